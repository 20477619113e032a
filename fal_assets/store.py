"""Content-addressed file store: every file is named by the sha256 of its bytes.

``root/ab/ab12...ef.png`` holds usable outputs; ``root/quarantine/ab/ab12...ef.png``
holds flagged ones (with a ``.reason.json`` beside each), so nothing downstream can
pick up a quarantined file by globbing the store. Writes are atomic; the same bytes
are stored once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import atomic
from .media import content_type_for

QUARANTINE = "quarantine"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SUFFIX = re.compile(r"(\.[A-Za-z0-9_-]+)+")


@dataclass(frozen=True)
class StoredFile:
    path: Path
    sha256: str
    size: int
    content_type: str
    url: str | None = None  # where the file lives when the store is a URL (remote_store.py)

    def as_dict(self) -> dict:
        """JSON-ready form (for the request journal and asset metadata)."""
        found = {"path": str(self.path), "sha256": self.sha256, "size": self.size,
                 "content_type": self.content_type}
        return {**found, "url": self.url} if self.url else found


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ContentStore:
    """Files under ``root`` named ``sha256[:2]/sha256<suffix>``."""

    def __init__(self, root: str | Path):
        self.root = Path(root).absolute()

    def path_for(self, sha256: str, suffix: str) -> Path:
        return self._path(self.root, sha256, suffix)

    def put(self, data: bytes, *, suffix: str) -> StoredFile:
        """Store ``data`` (once: the same bytes give the same path and no rewrite)."""
        return self._put(self.root, data, suffix)

    def quarantine(self, data: bytes, suffix: str, reason: str) -> StoredFile:
        """Store flagged ``data`` under ``root/quarantine/`` with the reason beside it."""
        stored = self._put(self.root / QUARANTINE, data, suffix)
        atomic.write_json(stored.path.with_name(stored.path.name + ".reason.json"),
                          {"reason": reason, "sha256": stored.sha256,
                           "at": datetime.now(timezone.utc).isoformat()})
        return stored

    def is_quarantined(self, path: str | Path) -> bool:
        return Path(path).absolute().is_relative_to(self.root / QUARANTINE)

    def verify(self, path: str | Path) -> bool:
        """True when the file exists and its bytes still hash to the sha256 in its name."""
        path = Path(path)
        expected = path.name[:64]
        if not _SHA256.fullmatch(expected) or not path.is_file():
            return False
        return sha256_of(path) == expected

    def locate(self, item: dict) -> Path | None:
        """A journal file entry's bytes on this machine: its recorded path, or the same
        bytes (by the sha256 in the name) in this store; None when neither is here."""
        path = Path(item["path"])
        if path.exists():
            return path
        name = path.name
        if _SHA256.fullmatch(name[:64]) and _SUFFIX.fullmatch(name[64:] or "-"):
            quarantined = path.parent.parent.name == QUARANTINE
            here = self._path(self.root / QUARANTINE if quarantined else self.root, name[:64], name[64:])
            if here.is_file() and self.verify(here):
                return here
        return None

    def _put(self, base: Path, data: bytes, suffix: str) -> StoredFile:
        sha = hashlib.sha256(data).hexdigest()
        path = self._path(base, sha, suffix)
        if not (path.is_file() and path.stat().st_size == len(data) and self.verify(path)):
            atomic.write_bytes(path, data)  # new, or a damaged copy is replaced
        return StoredFile(path, sha, len(data), content_type_for(suffix))

    @staticmethod
    def _path(base: Path, sha256: str, suffix: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"store: {sha256!r} is not a lowercase sha256 hex digest")
        if not _SUFFIX.fullmatch(suffix):
            raise ValueError(f"store: suffix {suffix!r} must look like '.png' or '.tar.gz'")
        return base / sha256[:2] / f"{sha256}{suffix}"
