"""Moving file bytes in and out of requests: data URIs, local paths, content types."""

from __future__ import annotations

import base64
import binascii
import io
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlparse

from .errors import GenerationFailed

CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".zip": "application/zip",
    ".safetensors": "application/octet-stream",
    ".json": "application/json",
    ".txt": "text/plain",
    ".mp4": "video/mp4",
}
SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "application/zip": ".zip",
    "application/json": ".json",
    "video/mp4": ".mp4",
}


def content_type_for(path: str | Path) -> str:
    """The content type of a file (or a bare suffix such as ``.png``), by its name."""
    name = str(path).lower()
    name = f"file{name}" if name.startswith(".") else name
    suffix = Path(name).suffix
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    kind, encoding = mimetypes.guess_type(name)
    if encoding:  # .tar.gz is gzip bytes, whatever is inside
        return "application/gzip" if encoding == "gzip" else "application/octet-stream"
    return kind or "application/octet-stream"


def suffix_for(content_type: str, url: str = "") -> str:
    """File suffix for a content type, falling back to the URL's own suffix."""
    content_type = (content_type or "").split(";")[0].strip().lower()
    if content_type in SUFFIXES:
        return SUFFIXES[content_type]
    url_suffix = Path(urlparse(url).path).suffix.lower()
    return url_suffix if url_suffix in CONTENT_TYPES else ".bin"


def to_data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def is_data_uri(value: str) -> bool:
    return isinstance(value, str) and value.startswith("data:")


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """``data:<type>;base64,<payload>`` -> (bytes, content type)."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.startswith("data:"):
        raise GenerationFailed(f"not a data URI: {uri[:40]}...")
    content_type = header[5:].split(";")[0] or "application/octet-stream"
    try:
        if ";base64" in header:
            return base64.b64decode(payload, validate=False), content_type
        return unquote(payload).encode("utf-8"), content_type
    except (binascii.Error, ValueError) as exc:
        raise GenerationFailed(f"data URI does not decode: {exc}") from exc


def local_path(value: str) -> Path | None:
    """The local file a ``file://`` URL or plain path names, else None."""
    if value.startswith("file://"):
        return Path(unquote(urlparse(value).path))
    if "://" in value or value.startswith("data:"):
        return None
    return Path(value)


def read_local(value: str) -> tuple[bytes, str] | None:
    """Bytes for a data URI, ``file://`` URL or local path; None for a remote URL."""
    if is_data_uri(value):
        return decode_data_uri(value)
    path = local_path(value)
    if path is None:
        return None
    return path.read_bytes(), content_type_for(path)


def image_size_of(data: bytes) -> tuple[int, int]:
    """(width, height) of encoded image bytes, reading only the header."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size
