"""The content-addressed file store."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from fal_assets.media import content_type_for
from fal_assets.store import ContentStore, StoredFile

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_stores_under_the_hash_and_leaves_no_temp_files(tmp_path):
    store = ContentStore(tmp_path / "store")
    stored = store.put(PNG, suffix=".png")
    sha = hashlib.sha256(PNG).hexdigest()
    assert stored == StoredFile(tmp_path / "store" / sha[:2] / f"{sha}.png", sha, len(PNG),
                                "image/png")
    assert stored.path.read_bytes() == PNG
    assert store.path_for(sha, ".png") == stored.path
    assert all_files(tmp_path) == [stored.path]  # no .tmp left beside it
    assert stored.as_dict() == {"path": str(stored.path), "sha256": sha, "size": len(PNG),
                                "content_type": "image/png"}
    assert json.dumps(stored.as_dict())


def test_same_bytes_are_stored_once_without_rewrite(tmp_path):
    store = ContentStore(tmp_path)
    first = store.put(PNG, suffix=".png")
    before = first.path.stat()
    os.utime(first.path, ns=(before.st_atime_ns, before.st_mtime_ns - 10_000_000_000))
    marked = first.path.stat().st_mtime_ns
    second = store.put(PNG, suffix=".png")
    assert second == first
    assert first.path.stat().st_mtime_ns == marked and first.path.stat().st_ino == before.st_ino
    other = store.put(PNG + b"!", suffix=".png")
    assert other.path != first.path and len(all_files(tmp_path)) == 2
    # The same bytes under another suffix are another file (content type differs).
    assert store.put(PNG, suffix=".bin").content_type == "application/octet-stream"


def test_verify_rehashes_and_damaged_copies_are_replaced(tmp_path):
    store = ContentStore(tmp_path)
    stored = store.put(PNG, suffix=".png")
    assert store.verify(stored.path)
    damaged = bytearray(PNG)
    damaged[20] ^= 0xFF
    stored.path.write_bytes(bytes(damaged))  # same size, different bytes
    assert not store.verify(stored.path)
    assert store.put(PNG, suffix=".png").path == stored.path
    assert store.verify(stored.path) and stored.path.read_bytes() == PNG
    assert not store.verify(tmp_path / "missing.png")
    assert not store.verify(tmp_path / ("z" * 64 + ".png"))
    plain = tmp_path / "notes.txt"
    plain.write_text("hello")
    assert not store.verify(plain)


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    store = ContentStore(tmp_path)

    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put(PNG, suffix=".png")
    assert all_files(tmp_path) == []


def test_quarantine_is_kept_apart_with_its_reason(tmp_path):
    store = ContentStore(tmp_path)
    flagged = store.quarantine(PNG, ".png", "has_nsfw_concepts")
    sha = hashlib.sha256(PNG).hexdigest()
    assert flagged.path == tmp_path / "quarantine" / sha[:2] / f"{sha}.png"
    assert store.is_quarantined(flagged.path) and store.verify(flagged.path)
    assert not store.path_for(sha, ".png").exists()  # never where usable outputs live
    reason = json.loads(flagged.path.with_name(f"{sha}.png.reason.json").read_text())
    assert reason["reason"] == "has_nsfw_concepts" and reason["sha256"] == sha
    usable = store.put(PNG, suffix=".png")
    assert not store.is_quarantined(usable.path) and usable.path != flagged.path


@pytest.mark.parametrize("sha, suffix", [("ab" * 32, "png"), ("ab" * 32, "/../x"),
                                         ("AB" * 32, ".png"), ("ab" * 31, ".png")])
def test_bad_names_are_refused(tmp_path, sha, suffix):
    with pytest.raises(ValueError, match="store:"):
        ContentStore(tmp_path).path_for(sha, suffix)


def test_content_types():
    assert content_type_for(".PNG") == "image/png"
    assert content_type_for(".webp") == "image/webp"
    assert content_type_for(".zip") == "application/zip"
    assert content_type_for(".safetensors") == "application/octet-stream"
    assert content_type_for(".tar.gz") == "application/gzip"
    assert content_type_for(".unknownext") == "application/octet-stream"
