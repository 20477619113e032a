"""The store by URL: content-addressed files at any fsspec URL, read through a local cache.

Where the files live decides how many machines can share one pipeline. With a plain
folder (today's default) every step must see the same disk; with a URL (``s3://bucket/
fal-assets``, ``gs://...``, ``file:///mnt/...``) each machine keeps only a cache and the
store is the one place every worker reads from and writes to. Two kinds of object live
under the URL:

- ``<url>/objects/<sha[:2]>/<sha><suffix>``: every file's bytes, named by their sha256
  (``objects/quarantine/...`` for flagged ones). Written once, never changed, so any
  number of workers can write the same object; the journal records each file's URL.
- ``<url>/index/<character>/<path>``: a pointer, one small JSON object per working file
  (``{"sha256", "size", "url"}``), naming what a stage wrote at that path of the working
  folder (``references/front.png``, ``poses_raw/idle.png``, ``sheet.png``). One object per
  file, so two steps writing different poses never overwrite each other's pointers.

Reads go through the local cache (a ``ContentStore`` folder, the same one the generator
writes to): a file is downloaded once per machine, checked against its hash, and copied
to where the stage reads it. ``open_store(None or a plain path, ...)`` is exactly the local
``ContentStore`` of before.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

from . import atomic
from .errors import InvalidInput, Problem
from .store import QUARANTINE, ContentStore, StoredFile, sha256_of

OBJECTS = "objects"
INDEX = "index"


def is_url(value: str | os.PathLike | None) -> bool:
    """True for ``scheme://...`` (``file://`` included); a plain path is not a URL."""
    return value is not None and "://" in str(value)


def filesystem(url: str):
    """``(fs, path)`` for ``url``, or one clear line when its fsspec filesystem is missing."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise InvalidInput([Problem("store", "url", f"{url!r} cannot be opened ({exc}); install its fsspec "
                                                    "filesystem, e.g. s3fs for s3://, gcsfs for gs://")]) from exc


def open_store(url: str | os.PathLike | None, cache: str | os.PathLike) -> ContentStore:
    """The generator's content store: ``RemoteStore(url, cache)`` for a URL, else the local
    ``ContentStore`` at ``url`` (or at ``cache`` when no URL is given): today's behaviour."""
    if is_url(url):
        return RemoteStore(str(url), cache)
    return ContentStore(url if url is not None else cache)


def suffix_of(path: str | os.PathLike) -> str:
    """The content store's suffix for a working file: ``.png``, ``.cut.json``, ``.bin`` (none)."""
    suffixes = Path(path).suffixes[-2:]
    text = "".join(suffixes)
    from .store import _SUFFIX

    if text and _SUFFIX.fullmatch(text):
        return text
    last = Path(path).suffix
    return last if last and _SUFFIX.fullmatch(last) else ".bin"


class RemoteStore(ContentStore):
    """``ContentStore`` whose files live at ``url``; ``root`` is this machine's cache."""

    def __init__(self, url: str, cache: str | os.PathLike):
        super().__init__(cache)
        self.url = str(url).rstrip("/")
        self.fs, self.base = filesystem(self.url)
        self.base = self.base.rstrip("/")
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    # -- names --------------------------------------------------------------------
    def object_url(self, sha256: str, suffix: str, *, quarantined: bool = False) -> str:
        relative = self._path(Path(QUARANTINE) if quarantined else Path(), sha256, suffix).as_posix()
        return f"{self.url}/{OBJECTS}/{relative}"

    def remote_path(self, url: str) -> str:
        """The filesystem path of a URL under this store."""
        if not url.startswith(self.url + "/"):
            raise ValueError(f"store: {url} is not under {self.url}")
        return f"{self.base}/{url[len(self.url) + 1:]}"

    # -- writes -------------------------------------------------------------------
    def put(self, data: bytes, *, suffix: str) -> StoredFile:
        """Cache ``data`` here and store it at its object URL (once: an object that is
        already there with the same size is not written again)."""
        stored = super().put(data, suffix=suffix)
        return replace(stored, url=self._upload(stored.path, self.object_url(stored.sha256, suffix)))

    def quarantine(self, data: bytes, suffix: str, reason: str) -> StoredFile:
        stored = super().quarantine(data, suffix, reason)
        return replace(stored, url=self._upload(stored.path, self.object_url(stored.sha256, suffix, quarantined=True)))

    def put_file(self, path: str | os.PathLike) -> StoredFile:
        """Store a file from a working folder (its bytes, by hash)."""
        return self.put(Path(path).read_bytes(), suffix=suffix_of(path))

    def _upload(self, local: Path, url: str) -> str:
        target = self.remote_path(url)
        size = local.stat().st_size
        try:
            if self.fs.size(target) == size:
                return url  # content-addressed: same name, same bytes
        except FileNotFoundError:
            pass
        if self.local:  # a folder: write beside, then rename (readers never see half a file)
            atomic.write_bytes(target, local.read_bytes())
        else:
            self.fs.put_file(str(local), target)  # one object per put: all or nothing
        return url

    # -- reads --------------------------------------------------------------------
    def fetch(self, url: str) -> Path:
        """The local copy of the object at ``url``: from the cache when its bytes are there
        and still hash right, else downloaded, checked against the hash in its name, cached."""
        name = url.rsplit("/", 1)[-1]
        sha, suffix = name[:64], name[64:]
        quarantined = f"/{OBJECTS}/{QUARANTINE}/" in url
        path = self._path(self.root / QUARANTINE if quarantined else self.root, sha, suffix)
        if path.is_file() and self.verify(path):
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            self.fs.get_file(self.remote_path(url), tmp)
            got = sha256_of(Path(tmp))
            if got != sha:
                raise OSError(f"store: {url} holds bytes with sha256 {got[:12]}, not {sha[:12]}")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    def locate(self, item: dict[str, Any]) -> Path | None:
        """A journal file entry's bytes on this machine: the recorded path when it is here,
        the same bytes in this cache, or a download from the recorded URL."""
        found = super().locate(item)
        if found is not None:
            return found
        url = item.get("url")
        if url and url.startswith(self.url + "/"):
            try:
                return self.fetch(url)
            except FileNotFoundError:
                return None
        return None

    def exists(self, url: str) -> bool:
        return self.fs.exists(self.remote_path(url))


class WorkingCopy:
    """A working folder (``output/``) mirrored through a ``RemoteStore`` by pointers.

    ``push(paths)`` stores the files and points ``index/<relative path>`` at them;
    ``pull(relative)`` makes the local file or folder what the index says (files the index
    does not name are removed there, so a stale file cannot leak into a dataset or a sheet).
    """

    def __init__(self, root: str | os.PathLike, store: RemoteStore):
        self.root = Path(root).absolute()
        self.store = store

    def pointer_path(self, relative: str) -> str:
        return f"{self.store.base}/{INDEX}/{relative}"

    def relative(self, path: str | os.PathLike) -> str:
        return Path(path).absolute().relative_to(self.root).as_posix()

    def push(self, paths: Iterable[str | os.PathLike], *, exact: bool = False) -> dict[str, str]:
        """Store each file (a folder: every file under it) and write its pointer; returns
        ``{relative path: object URL}``. ``exact`` also drops the pointers under each
        pushed folder that name files no longer there (a renamed or removed view)."""
        urls: dict[str, str] = {}
        folders = []
        for path in map(Path, paths):
            if path.is_dir():
                folders.append(path)
                files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            else:
                files = [path]
            for file in files:
                stored = self.store.put_file(file)
                relative = self.relative(file)
                pointer = {"sha256": stored.sha256, "size": stored.size, "url": stored.url}
                self._write_pointer(relative, pointer)
                urls[relative] = stored.url
        if exact:
            for folder in folders:
                for relative in set(self._pointers(self.relative(folder))) - set(urls):
                    self.store.fs.rm_file(self.pointer_path(relative))
        return urls

    def pull(self, relative: str) -> Path:
        """Bring the file or folder at ``relative`` to this machine as the index names it,
        through the cache; returns its local path (which may not exist: nothing stored yet)."""
        local = self.root / relative
        pointers = self._pointers(relative)
        wanted: set[Path] = set()
        if pointers:
            blobs = self.store.fs.cat([self.pointer_path(r) for r in pointers])
            for rel in pointers:
                pointer = json.loads(blobs[self.pointer_path(rel)])
                target = self.root / rel
                wanted.add(target)
                if target.is_file() and target.stat().st_size == pointer["size"] and sha256_of(target) == pointer["sha256"]:
                    continue
                cached = self.store.fetch(pointer["url"])
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
                os.close(fd)
                shutil.copyfile(cached, tmp)
                os.replace(tmp, target)
        if local.is_dir():
            for path in local.rglob("*"):
                if path.is_file() and path not in wanted and not path.name.startswith("."):
                    path.unlink()  # not in the store: stale here
        return local

    def _write_pointer(self, relative: str, pointer: dict) -> None:
        data = json.dumps(pointer, sort_keys=True).encode()
        target = self.pointer_path(relative)
        if self.store.local:
            atomic.write_bytes(target, data)
        else:
            self.store.fs.pipe_file(target, data)

    def _pointers(self, relative: str) -> list[str]:
        """The relative paths the index names at ``relative`` (a file) or under it (a folder)."""
        fs, target = self.store.fs, self.pointer_path(relative)
        fs.invalidate_cache()  # another worker may have written since this process last listed
        if fs.isfile(target):
            return [relative]
        try:
            found = fs.find(target)
        except FileNotFoundError:
            return []
        prefix = f"{self.store.base}/{INDEX}/"
        return sorted(p[len(prefix):] for p in (f.rstrip("/") for f in found)
                      if p.startswith(prefix) and p != target)
