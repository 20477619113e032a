"""Small previews for people: thumbnails as data URIs (Dagster shows images only that way).

Dagster's UI (1.13) draws a Markdown metadata value in place, in the asset's sidebar and
its events table, when it is shorter than 1000 characters, and hides a longer one behind
"Show Markdown". ``inline_markdown`` makes the largest thumbnail that still fits.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
from pathlib import Path

from . import atomic

#: Bump when a preview's look changes: cached previews of the old look are then not used.
PREVIEW_FORMAT = 1


def cache_dir() -> Path:
    """Where previews of files are kept by content hash (``$FAL_ASSETS_PREVIEW_CACHE``, else
    ``$XDG_CACHE_HOME/fal-assets/previews``): an unchanged image is never encoded again."""
    if os.environ.get("FAL_ASSETS_PREVIEW_CACHE"):
        return Path(os.environ["FAL_ASSETS_PREVIEW_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "fal-assets" / "previews"


def cached_by_content(make):
    """Memoise a preview of a file on disk by the file's bytes and the call's arguments
    (an image object is previewed afresh). A preview costs 10-60 ms of encoding; a
    re-materialized partition whose image did not change reads it back in well under 1 ms."""

    @functools.wraps(make)
    def preview(source, *args, **kwargs):
        if not isinstance(source, (str, Path)) or not Path(source).is_file():
            return make(source, *args, **kwargs)
        digest = hashlib.sha256(repr((make.__name__, PREVIEW_FORMAT, args, sorted(kwargs.items()))).encode())
        digest.update(Path(source).read_bytes())
        key = digest.hexdigest()
        kept = cache_dir() / key[:2] / f"{key}.md"
        try:
            return kept.read_text(encoding="utf-8")
        except OSError:
            pass
        text = make(source, *args, **kwargs)
        try:
            atomic.write_text(kept, text)
        except OSError:  # a read-only or full cache only costs the encoding next time
            pass
        return text

    return preview


def thumbnail_png(source, max_side: int = 192) -> bytes:
    """A PNG no larger than ``max_side`` on its long side, transparency kept."""
    from PIL import Image

    image = source if isinstance(source, Image.Image) else Image.open(source)
    image = image.copy()
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)  # 2x faster, same look
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)  # `optimize` takes twice as long for 1% less
    return buffer.getvalue()


@cached_by_content
def thumbnail_markdown(source, alt: str = "preview", max_side: int = 192) -> str:
    """Markdown with an inline image, for a metadata value in the Dagster UI."""
    if isinstance(source, (str, Path)) and not Path(source).exists():
        return f"_{alt}: {source} is missing_"
    encoded = base64.b64encode(thumbnail_png(source, max_side)).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"


#: Dagster's UI renders Markdown metadata in place when it is shorter than this.
INLINE_LIMIT = 1000
INLINE_SIDES = (160, 144, 128, 112, 96, 80, 64, 48, 32)
CARD = (228, 228, 232, 255)  # behind an inline cutout


def _encodings(image):
    """(content type, bytes) of ``image`` in the few small encodings worth trying."""
    from PIL import Image

    has_alpha = image.mode in ("RGBA", "LA") or "transparency" in image.info
    webp = io.BytesIO()
    image.convert("RGBA" if has_alpha else "RGB").save(webp, format="WEBP", quality=40, alpha_quality=30, method=4)
    yield "image/webp", webp.getvalue()
    if has_alpha:  # a cutout on a light grey card: lossy and small, and the cut still shows
        card = Image.new("RGBA", image.size, CARD)
        card.alpha_composite(image.convert("RGBA"))
        flat = io.BytesIO()
        card.convert("RGB").save(flat, format="WEBP", quality=40, method=4)
        yield "image/webp", flat.getvalue()
    png = io.BytesIO()
    image.convert("RGBA").quantize(16, method=Image.Quantize.FASTOCTREE).save(png, format="PNG", optimize=True)
    yield "image/png", png.getvalue()


@cached_by_content
def inline_markdown(source, alt: str = "preview", limit: int = INLINE_LIMIT) -> str:
    """Markdown with the largest thumbnail (of ``INLINE_SIDES``) whose whole text stays
    under ``limit`` characters, so the Dagster UI shows the picture without a click."""
    from PIL import Image

    if isinstance(source, (str, Path)) and not Path(source).exists():
        return f"_{alt}: {source} is missing_"
    image = source if isinstance(source, Image.Image) else Image.open(source)
    image.load()
    for side in INLINE_SIDES:
        small = image.copy()
        small.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=2.0)
        for content_type, data in sorted(_encodings(small), key=lambda e: len(e[1])):
            text = f"![{alt}](data:{content_type};base64,{base64.b64encode(data).decode('ascii')})"
            if len(text) < limit:
                return text
            break  # the smallest encoding does not fit: try a smaller side
    return f"_{alt}: no thumbnail fits in {limit} characters; see the larger preview_"
