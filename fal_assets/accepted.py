"""The accept-to-record window, closed: an append-only, fsync'd record of every submit.

fal has no idempotency key. Between fal accepting a submit and the journal committing
its request id lie a few milliseconds (more under a held database lock or a slow
disk); a process killed there used to leave a claim that a rerun sent again, paying
twice. So the generator writes two lines here, each flushed to disk before it goes on:

* ``sending`` just before the submit POST leaves (the request may be accepted from
  now on), and
* ``accepted`` with fal's request id the instant the answer arrives, before any log
  line, event or journal write.

A rerun reads the last line for a key: ``accepted`` -> adopt the request id (follow
it, no second submit); ``sending`` -> in doubt (the POST went out, its answer never
came back); nothing -> it was never sent. The journal absorbs what it finds here.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SENDING, ACCEPTED, RESEND = "sending", "accepted", "resend"


@dataclass(frozen=True)
class Mark:
    key: str
    event: str
    request_id: str | None
    endpoint: str
    at: str


@dataclass
class _Line:
    data: bytes
    done: bool = False
    error: BaseException | None = None


class AcceptedLog:
    """One file, appended by every process of this workdir (O_APPEND writes are atomic).

    Appends from several threads share fsyncs (group commit): the first waiting thread
    writes every pending line in one write and one fsync while the others wait for it,
    so N requests accepted together cost about one disk flush, not N. A call returns
    only once its own line is on disk, as before. The generator calls it from worker
    threads (``asyncio.to_thread``), so a flush never stalls the other requests.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cond = threading.Condition()
        self._pending: list[_Line] = []
        self._flushing = False

    def _append(self, key: str, event: str, endpoint: str, request_id: str | None = None) -> None:
        text = json.dumps({"key": key, "event": event, "request_id": request_id, "endpoint": endpoint,
                           "at": datetime.now(timezone.utc).isoformat()}, separators=(",", ":")) + "\n"
        mine = _Line(text.encode("utf-8"))
        with self._cond:
            self._pending.append(mine)
            while not mine.done:
                if self._flushing:
                    self._cond.wait()
                    continue
                batch, self._pending, self._flushing = self._pending, [], True
                error = None
                self._cond.release()
                try:
                    self._write(b"".join(line.data for line in batch))
                except BaseException as exc:  # none of the batch is known to be on disk: all its callers fail
                    error = exc
                finally:
                    self._cond.acquire()
                    for line in batch:
                        line.done, line.error = True, error
                    self._flushing = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error

    def _write(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def sending(self, key: str, endpoint: str) -> None:
        self._append(key, SENDING, endpoint)

    def accepted(self, key: str, endpoint: str, request_id: str) -> None:
        self._append(key, ACCEPTED, endpoint, request_id)

    def resend(self, key: str, endpoint: str = "") -> None:
        """The user decided to send an in-doubt request again, on purpose."""
        self._append(key, RESEND, endpoint)

    def last(self, key: str) -> Mark | None:
        """The last line written for ``key`` (a torn last line from a crash is skipped)."""
        found = None
        try:
            with self.path.open("r", encoding="utf-8") as handle:
                for raw in handle:
                    if key not in raw:
                        continue
                    try:
                        data = json.loads(raw)
                    except json.JSONDecodeError:
                        continue
                    if data.get("key") == key:
                        found = Mark(data["key"], data["event"], data.get("request_id"), data.get("endpoint", ""), data.get("at", ""))
        except FileNotFoundError:
            return None
        return found
