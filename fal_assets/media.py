"""Moving file bytes in and out of requests: data URIs, local paths, content types."""

from __future__ import annotations

import base64
import binascii
import io
import mimetypes
import stat
from pathlib import Path
from urllib.parse import unquote, urlparse

from .errors import GenerationFailed, InvalidInput, Problem

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


#: The largest input image read for a request (fal's own inputs are a few MB).
MAX_INPUT_IMAGE_BYTES = 64 * 1024 * 1024
#: The largest side of an input image (PIL's decompression-bomb guard stops at about 179 MP).
MAX_INPUT_SIDE = 16384
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


def read_input(slot: str, local: str | Path) -> bytes:
    """The bytes of a local file given for request argument ``slot``, checked: a regular,
    readable file; for an image slot (``image_url``, ``image_urls.N``) an image that
    decodes, in a format fal takes, at most ``MAX_INPUT_SIDE`` px a side. Problems are
    one line naming the file and the slot."""
    from PIL import Image, UnidentifiedImageError

    path = Path(local)

    def refuse(message: str) -> InvalidInput:
        return InvalidInput([Problem(str(path), slot, message)])

    image = slot.startswith("image_url")
    limit = MAX_INPUT_IMAGE_BYTES if image else None
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise refuse("is a folder" if stat.S_ISDIR(info.st_mode) else "is not a regular file (a device, pipe or socket)")
        if limit is not None and info.st_size > limit:
            raise refuse(f"is {info.st_size / 2**20:.0f} MB; an input image may be {limit // 2**20} MB at most")
        with path.open("rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
    except OSError as exc:
        raise refuse(f"cannot read the file: {exc.strerror or exc}") from None
    if limit is not None and len(data) > limit:
        raise refuse(f"is larger than an input image may be ({limit // 2**20} MB)")
    if not image:
        return data
    allowed = ", ".join(IMAGE_FORMATS)
    try:
        with Image.open(io.BytesIO(data)) as decoded:
            kind, size = decoded.format, decoded.size
            decoded.verify()
    except Image.DecompressionBombError:
        raise refuse(f"is too large an image; at most {MAX_INPUT_SIDE} px a side") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise refuse(f"is not an image ({allowed})") from None
    if kind not in IMAGE_FORMATS:
        raise refuse(f"is a {kind} image; allowed: {allowed}")
    if max(size) > MAX_INPUT_SIDE:
        raise refuse(f"is {size[0]}x{size[1]} px; at most {MAX_INPUT_SIDE} px a side")
    return data
