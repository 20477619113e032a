"""Small previews for people: thumbnails as data URIs (Dagster shows images only that way)."""

from __future__ import annotations

import base64
import io
from pathlib import Path


def thumbnail_png(source, max_side: int = 192) -> bytes:
    """A PNG no larger than ``max_side`` on its long side, transparency kept."""
    from PIL import Image

    image = source if isinstance(source, Image.Image) else Image.open(source)
    image = image.copy()
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)  # 2x faster, same look
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)  # `optimize` takes twice as long for 1% less
    return buffer.getvalue()


def thumbnail_markdown(source, alt: str = "preview", max_side: int = 192) -> str:
    """Markdown with an inline image, for a metadata value in the Dagster UI."""
    if isinstance(source, (str, Path)) and not Path(source).exists():
        return f"_{alt}: {source} is missing_"
    encoded = base64.b64encode(thumbnail_png(source, max_side)).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"
