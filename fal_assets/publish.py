"""Copy finished files to object storage by URL (``s3://``, ``gs://``, ``az://``...).

The local folder stays the working copy that every stage reads; publishing puts the
files users keep (sprites, sheets, LoRA weights, the cost report) where their team and
their game builds can fetch them. Any fsspec URL works once its filesystem package is
installed (``s3fs`` for S3, ``gcsfs`` for GCS); ``memory://`` needs nothing (tests).
"""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidInput, Problem


def publish(files: list[Path], root: Path, url: str) -> list[str]:
    """Upload each file (which lies under ``root``) to ``url/<path relative to root>``."""
    import fsspec

    try:
        fs, base = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise InvalidInput([Problem("store", "publish_url", f"{url!r} cannot be opened ({exc}); install its fsspec filesystem, e.g. s3fs for s3://")]) from exc
    root = Path(root).resolve()
    published = []
    for path in files:
        relative = Path(path).resolve().relative_to(root).as_posix()
        target = f"{base.rstrip('/')}/{relative}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(path), target)  # one object per put: readers see the old or the new file
        published.append(f"{url.rstrip('/')}/{relative}")
    return published
