"""The request journal: one row per request, written before any money moves.

fal has no idempotency key, so the journal is what keeps a retry, a second worker
or a restart after a crash from paying for the same image twice. A request is
identified by :func:`request_key` (endpoint + arguments, seed included). Before a
process sends a submit it *claims* the key in the database; the database decides
races (primary key on insert, ``UPDATE ... WHERE state = ...`` on every change).

SQLite (WAL, busy timeout) serves several processes on one machine; a PostgreSQL
URL serves several machines with the same code. Create one :class:`Journal` per
process. Timestamps are UTC.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Mapping

from sqlalchemy import (Column, DateTime, Float, Integer, MetaData, String, Table, Text,
                        TypeDecorator, create_engine, event, func, insert, or_, select,
                        update)
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.schema import CreateIndex, CreateTable, Index

from . import journal_errors
from .errors import FalAssetsError, InvalidInput, Problem

DEFAULT_LEASE_SECONDS = 120.0
SQLITE_BUSY_TIMEOUT_S = 30.0
COST_KINDS = ("billed", "estimated")


class State(StrEnum):
    CLAIMED = "claimed"          # journaled before the submit is sent; one owner
    SUBMITTED = "submitted"      # fal accepted it; request_id known
    COMPLETED = "completed"
    FAILED = "failed"            # may be submitted again
    QUARANTINED = "quarantined"  # flagged output; never used, never resubmitted
    IN_DOUBT = "in_doubt"        # owner died before recording a request id


class Action(StrEnum):
    CACHED = "cached"            # completed: use the entry, $0, no network
    RESUME = "resume"            # follow entry.request_id; do NOT submit again
    SUBMIT = "submit"            # this process owns the claim and must submit
    WAIT = "wait"                # another live process holds the claim
    QUARANTINED = "quarantined"


class JournalStateError(FalAssetsError):
    """A transition was asked from a state (or by an owner) that does not allow it."""


def request_key(endpoint: str, arguments: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of endpoint and arguments (seed included)."""
    canonical = json.dumps({"endpoint": endpoint, "arguments": arguments}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python, naive UTC in the database (same on SQLite and PG)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("journal timestamps must be timezone-aware")
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


_metadata = MetaData()
requests = Table(
    "fal_requests", _metadata,
    Column("key", String(100), primary_key=True),  # a backend prefix + ":" + 64 hex
    Column("endpoint", String(200), nullable=False),
    Column("arguments_json", Text, nullable=False),
    Column("backend", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("request_id", String(100)),
    Column("owner", String(200)),
    Column("lease_until", _UTCDateTime),
    Column("attempts", Integer, nullable=False),
    Column("created_at", _UTCDateTime, nullable=False),
    Column("updated_at", _UTCDateTime, nullable=False),
    Column("submitted_at", _UTCDateTime),
    Column("completed_at", _UTCDateTime),
    Column("estimate_usd", Float, nullable=False),
    Column("cost_usd", Float),
    Column("cost_kind", String(16)),
    Column("files_json", Text),
    Column("result_json", Text),
    Column("error", Text),
    Column("timings_json", Text),
    Column("labels_json", Text, nullable=False),
)
_indexes = [Index("ix_fal_requests_state", requests.c.state),
            Index("ix_fal_requests_updated_at", requests.c.updated_at)]
_JSON_COLUMNS = {"arguments_json": "arguments", "files_json": "files",
                 "result_json": "result", "timings_json": "timings", "labels_json": "labels"}
_RECORD_FIELDS = ("key", "endpoint", "backend", "state", "request_id", "attempts", "seed",
                  "estimate_usd", "cost_usd", "cost_kind", "created_at", "submitted_at",
                  "completed_at", "error")


@dataclass(frozen=True)
class Entry:
    key: str
    endpoint: str
    arguments: dict
    backend: str
    state: State
    request_id: str | None
    owner: str | None
    lease_until: datetime | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None
    estimate_usd: float
    cost_usd: float | None
    cost_kind: str | None
    files: list | None
    result: Any
    error: str | None
    timings: dict | None
    labels: dict

    @property
    def seed(self) -> Any:
        return self.arguments.get("seed")


@dataclass(frozen=True)
class Decision:
    """What :meth:`Journal.begin` tells the caller to do, with the row it decided on.

    ``previous_state`` is the state the row had before this call (``None`` for a new
    row); ``SUBMIT`` after ``in_doubt`` is worth a warning in the caller's log.
    """

    action: Action
    entry: Entry
    previous_state: State | None = None

    @property
    def request_id(self) -> str | None:
        return self.entry.request_id


def owner_alive(owner: str | None) -> bool:
    """False only when the owner ran on this host and its process is gone (kill -9)."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's process: only its lease can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _dump(value: Any) -> str | None:
    if value is None:
        return None

    def default(obj):
        if dataclasses.is_dataclass(obj):
            return dataclasses.asdict(obj)
        if isinstance(obj, (Path, datetime)):
            return str(obj)
        raise TypeError(f"journal: cannot store {type(obj).__name__} as JSON")

    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=default)


def _check_no_secret(text: str | None, what: str) -> None:
    """Refuse to store anything that contains the fal key (or either half of it)."""
    if not text:
        return
    for name in ("FAL_KEY", "FAL_AI_API_KEY"):
        secret = os.environ.get(name, "")
        if len(secret) < 8:
            continue
        parts = [secret] + [p for p in secret.split(":") if len(p) >= 8]
        if any(part in text for part in parts):
            raise InvalidInput([Problem("request", what, f"holds the value of {name}; take the key out (it belongs in "
                                                         "the environment only); nothing was sent or stored")])


class Journal:
    """The request journal on a database URL (``sqlite:///path`` or ``postgresql://...``)."""

    def __init__(self, url: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 clock: Callable[[], datetime] = _utcnow):
        self.url = url
        self.lease_seconds = lease_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self._clock = clock
        is_sqlite = str(url).startswith("sqlite")
        try:
            self.engine = create_engine(
                url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S} if is_sqlite else {})
        except (ArgumentError, ImportError) as exc:  # not a URL, an unknown dialect, no driver
            raise journal_errors.unavailable(url, exc) from None
        journal_errors.watch(self.engine, url)  # connection and storage errors: one line each
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._create_tables()
        except sqlite3.DatabaseError as exc:  # raised by the pragmas, outside SQLAlchemy's wrapping
            raise journal_errors.unavailable(url, exc) from None

    @classmethod
    def at(cls, path: str | os.PathLike, **kwargs) -> "Journal":
        """A journal in the SQLite file at ``path`` (its folder is created)."""
        path = Path(path).absolute()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise journal_errors.JournalUnavailable([Problem(
                f"journal {path}", "", f"cannot create its folder {path.parent}: {exc.strerror or exc}; "
                f"{journal_errors.ELSEWHERE.removeprefix('or ')}")]) from None
        return cls(f"sqlite:///{path}", **kwargs)

    def close(self) -> None:
        self.engine.dispose()

    def _create_tables(self) -> None:
        # IF NOT EXISTS makes this idempotent; the retry covers two processes creating
        # a fresh database at the same moment (PostgreSQL can still collide on catalogs).
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    conn.execute(CreateTable(requests, if_not_exists=True))
                    for index in _indexes:
                        conn.execute(CreateIndex(index, if_not_exists=True))
                return
            except DBAPIError:
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))

    # -- the key operation ----------------------------------------------------------

    def begin(self, key: str, endpoint: str, arguments: Mapping[str, Any], *, backend: str,
              estimate_usd: float, labels: Mapping[str, Any] | None = None,
              lease_seconds: float | None = None) -> Decision:
        """Decide what to do about ``key``; see :class:`Action`.

        SUBMIT means the claim row is committed before this returns: the request is
        journaled before it is sent. The owner then calls :meth:`mark_submitted` as
        soon as fal answers with a request id (and :meth:`renew` if the POST is slow).

        ``failed`` and ``in_doubt`` rows are claimed again through a conditional UPDATE,
        so exactly one racer gets SUBMIT. A ``claimed`` row whose lease expired (the
        owner died) becomes ``in_doubt`` and is resubmitted: this is the one window in
        which a crash can pay twice, when fal accepted the POST but the process died
        before committing the request id. The window is the few milliseconds between
        the HTTP response and the commit of :meth:`mark_submitted`.
        A ``submitted`` row whose result fal no longer keeps (about an hour) must be
        marked failed by the caller before it can be submitted again.
        """
        labels = dict(labels or {})
        clash = sorted(set(labels) & set(_RECORD_FIELDS + ("files", "labels")))
        if clash:
            raise ValueError(f"journal: label names {clash} are reserved for record columns")
        arguments_json, labels_json = _dump(dict(arguments)), _dump(labels)
        _check_no_secret(arguments_json, "arguments")
        _check_no_secret(labels_json, "labels")
        lease = timedelta(seconds=self.lease_seconds if lease_seconds is None else lease_seconds)
        now = self._clock()
        row = dict(key=key, endpoint=endpoint, arguments_json=arguments_json,
                   backend=backend, state=State.CLAIMED.value, owner=self.owner,
                   lease_until=now + lease, attempts=1, created_at=now, updated_at=now,
                   estimate_usd=float(estimate_usd), labels_json=labels_json)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(requests).values(**row))
            return Decision(Action.SUBMIT, self._get(key))
        except IntegrityError:
            pass  # the key exists: decide from its state below

        for _ in range(10):
            entry = self._get(key)
            if entry.state == State.COMPLETED:
                return Decision(Action.CACHED, entry, entry.state)
            if entry.state == State.SUBMITTED:
                return Decision(Action.RESUME, entry, entry.state)
            if entry.state == State.QUARANTINED:
                return Decision(Action.QUARANTINED, entry, entry.state)
            now = self._clock()
            if entry.state == State.CLAIMED:
                if entry.lease_until is not None and entry.lease_until > now and owner_alive(entry.owner):
                    return Decision(Action.WAIT, entry, entry.state)
                # The owner's lease ran out, or its process is gone from this host: it
                # died (or hung) between claim and record.
                self._swap(entry, state=State.IN_DOUBT.value, updated_at=now)
                continue
            # failed or in_doubt: whoever swaps the row first owns the new attempt.
            if self._swap(entry, state=State.CLAIMED.value, owner=self.owner,
                          lease_until=now + lease, attempts=entry.attempts + 1,
                          request_id=None, updated_at=now, estimate_usd=float(estimate_usd),
                          labels_json=labels_json, backend=backend):
                return Decision(Action.SUBMIT, self._get(key), entry.state)
        return Decision(Action.WAIT, self._get(key), None)

    def _swap(self, seen: Entry, **values) -> bool:
        """Compare-and-swap: change the row only if it is still exactly as ``seen``."""
        c = requests.c
        stmt = (update(requests).where(c.key == seen.key, c.state == seen.state.value,
                                       c.attempts == seen.attempts, c.updated_at == seen.updated_at)
                .values(**values))
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def renew(self, key: str, lease_seconds: float | None = None) -> bool:
        """Extend this process's claim on ``key``; False when it no longer holds it."""
        now = self._clock()
        lease = timedelta(seconds=self.lease_seconds if lease_seconds is None else lease_seconds)
        c = requests.c
        stmt = (update(requests)
                .where(c.key == key, c.state == State.CLAIMED.value, c.owner == self.owner)
                .values(lease_until=now + lease, updated_at=now))
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    # -- transitions ----------------------------------------------------------------

    def mark_in_doubt(self, key: str, reason: str) -> Entry:
        """The owner sent the submit but its answer was lost: fal may or may not hold a
        job for it. The next ``begin`` sends it again (fal has no idempotency key)."""
        _check_no_secret(reason, "reason")
        return self._transition(key, own=(State.CLAIMED,), anyone=(), idempotent=State.IN_DOUBT,
                                state=State.IN_DOUBT.value, error=reason, lease_until=None)

    def mark_submitted(self, key: str, request_id: str) -> Entry:
        """Record fal's request id. Only the claim's owner may (also once in_doubt)."""
        now = self._clock()
        return self._transition(key, own=(State.CLAIMED, State.IN_DOUBT), anyone=(),
                                state=State.SUBMITTED.value, request_id=request_id,
                                submitted_at=now, lease_until=None)

    def mark_completed(self, key: str, *, files: list | None, cost_usd: float,
                       cost_kind: str, result: Any = None, timings: Mapping | None = None) -> Entry:
        """Record the outcome. Anyone may complete a submitted row (a resumer follows the
        request id); a claimed row only by its owner (local backends never submit).
        Completing a completed row again changes nothing and returns it."""
        _check_cost_kind(cost_kind)
        files_json, result_json, timings_json = _dump(files), _dump(result), _dump(timings)
        for text, what in ((files_json, "files"), (result_json, "result"),
                           (timings_json, "timings")):
            _check_no_secret(text, what)
        return self._transition(
            key, own=(State.CLAIMED, State.IN_DOUBT), anyone=(State.SUBMITTED,),
            idempotent=State.COMPLETED, state=State.COMPLETED.value, files_json=files_json,
            result_json=result_json, timings_json=timings_json, error=None,
            completed_at=self._clock(), cost_kind=cost_kind, lease_until=None,
            cost_usd=func.coalesce(requests.c.cost_usd, 0.0) + float(cost_usd))

    def mark_failed(self, key: str, error: str, *, billed_usd: float = 0.0) -> Entry:
        """Record a failure (the row may be submitted again). ``billed_usd`` is what fal
        charged for it: 0 for 5xx, maybe more for a 422 that spent GPU time. Failing a
        failed row again (a second resumer of the same request) changes nothing."""
        _check_no_secret(error, "error")
        values = dict(state=State.FAILED.value, error=error, lease_until=None,
                      completed_at=self._clock(),
                      cost_usd=func.coalesce(requests.c.cost_usd, 0.0) + float(billed_usd))
        if billed_usd:
            values["cost_kind"] = "billed"
        return self._transition(key, own=(State.CLAIMED, State.IN_DOUBT),
                                anyone=(State.SUBMITTED,), idempotent=State.FAILED, **values)

    def mark_quarantined(self, key: str, reason: str, files: list | None, *,
                         cost_usd: float = 0.0, cost_kind: str = "billed") -> Entry:
        """Record flagged output: kept for inspection, never used, never resubmitted."""
        _check_cost_kind(cost_kind)
        files_json = _dump(files)
        _check_no_secret(files_json, "files")
        _check_no_secret(reason, "reason")
        return self._transition(
            key, own=(State.CLAIMED, State.IN_DOUBT), anyone=(State.SUBMITTED,),
            idempotent=State.QUARANTINED, state=State.QUARANTINED.value, error=reason,
            files_json=files_json, completed_at=self._clock(), lease_until=None,
            cost_kind=cost_kind,
            cost_usd=func.coalesce(requests.c.cost_usd, 0.0) + float(cost_usd))

    def _transition(self, key: str, *, own: tuple, anyone: tuple,
                    idempotent: State | None = None, **values) -> Entry:
        c = requests.c
        allowed = c.state.in_([s.value for s in own]) & (c.owner == self.owner)
        if anyone:
            allowed = or_(allowed, c.state.in_([s.value for s in anyone]))
        stmt = update(requests).where(c.key == key, allowed).values(
            updated_at=self._clock(), **values)
        with self.engine.begin() as conn:
            changed = conn.execute(stmt).rowcount == 1
        entry = self.get(key)
        if changed or (entry is not None and entry.state == idempotent):
            return entry
        if entry is None:
            raise JournalStateError(f"journal: {key}: no such request")
        mine = "this process" if entry.owner == self.owner else f"owner {entry.owner}"
        raise JournalStateError(
            f"journal: {key}: cannot become {values['state']} from {entry.state.value} "
            f"({mine}); allowed from {', '.join(s.value for s in own)} by the owner"
            + (f" or {', '.join(s.value for s in anyone)}" if anyone else ""))

    # -- settling doubt by hand (fal-assets journal adopt / resend) -----------------

    def adopt(self, key: str, request_id: str) -> Entry:
        """Record ``request_id`` for a request whose answer never reached the journal
        (in doubt, failed, or claimed by a process that is gone): it is followed, not resent."""
        _check_no_secret(request_id, "request id")
        entry = self._get(key)
        if entry.state in (State.COMPLETED, State.QUARANTINED, State.SUBMITTED):
            raise JournalStateError(f"journal: {key}: is {entry.state.value} (request {entry.request_id}); nothing to adopt")
        if entry.state == State.CLAIMED and owner_alive(entry.owner) and (
                entry.lease_until is None or entry.lease_until > self._clock()):
            raise JournalStateError(f"journal: {key}: a live process ({entry.owner}) is sending it right now")
        now = self._clock()
        if not self._swap(entry, state=State.SUBMITTED.value, request_id=request_id, submitted_at=now,
                          updated_at=now, lease_until=None, error=None):
            raise JournalStateError(f"journal: {key}: changed while adopting; run the command again")
        return self._get(key)

    def allow_resend(self, key: str, reason: str = "sent again on purpose (fal-assets journal resend)") -> Entry:
        """Let the next run send an in-doubt request again, knowing fal may bill both."""
        entry = self._get(key)
        if entry.state not in (State.IN_DOUBT, State.FAILED, State.CLAIMED):
            raise JournalStateError(f"journal: {key}: is {entry.state.value}; only in_doubt or failed requests are resent")
        if entry.state == State.CLAIMED and owner_alive(entry.owner) and (
                entry.lease_until is None or entry.lease_until > self._clock()):
            raise JournalStateError(f"journal: {key}: a live process ({entry.owner}) is sending it right now")
        if not self._swap(entry, state=State.FAILED.value, error=reason, updated_at=self._clock(), lease_until=None):
            raise JournalStateError(f"journal: {key}: changed meanwhile; run the command again")
        return self._get(key)

    # -- queries --------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(requests).where(requests.c.key == key)).mappings().first()
        return None if row is None else _entry(row)

    def _get(self, key: str) -> Entry:
        entry = self.get(key)
        if entry is None:
            raise JournalStateError(f"journal: no request {key}; `fal-assets journal doubt` lists the requests in doubt")
        return entry

    def entries(self, **filters: Any) -> list[Entry]:
        """Entries oldest first. Filters on columns (state, backend, endpoint, request_id,
        owner, cost_kind) match in the database; any other name matches a label."""
        stmt = select(requests).order_by(requests.c.created_at, requests.c.key)
        label_filters = {}
        for name, value in filters.items():
            if name in requests.c and not name.endswith("_json"):
                stmt = stmt.where(requests.c[name] == (value.value if isinstance(value, StrEnum)
                                                       else value))
            else:
                label_filters[name] = value
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        found = [_entry(r) for r in rows]
        return [e for e in found
                if all(e.labels.get(k, object()) == v for k, v in label_filters.items())]

    def totals(self) -> dict:
        """``billed_usd``, ``estimated_usd`` (recorded costs by kind), ``pending_usd``
        (estimates of claimed/submitted/in_doubt rows) and ``count`` by state."""
        c = requests.c
        with self.engine.connect() as conn:
            costs = dict(conn.execute(select(c.cost_kind, func.coalesce(func.sum(c.cost_usd), 0.0))
                                      .group_by(c.cost_kind)).all())
            counts = dict(conn.execute(select(c.state, func.count()).group_by(c.state)).all())
            pending = conn.execute(select(func.coalesce(func.sum(c.estimate_usd), 0.0))
                                   .where(c.state.in_(_PENDING))).scalar_one()
        return {"billed_usd": float(costs.get("billed", 0.0)),
                "estimated_usd": float(costs.get("estimated", 0.0)),
                "pending_usd": float(pending),
                "count": {s.value: int(counts.get(s.value, 0)) for s in State}}

    def spend_since(self, since: datetime, backend: str | None = None, *,
                    pending: bool = True) -> float:
        """Dollars recorded on rows finished since ``since``, plus (``pending``) the
        estimates of rows still in flight, so parallel workers cannot overshoot a cap."""
        c = requests.c
        spent = select(func.coalesce(func.sum(c.cost_usd), 0.0)).where(c.updated_at >= since)
        waiting = select(func.coalesce(func.sum(c.estimate_usd), 0.0)).where(
            c.state.in_(_PENDING), c.updated_at >= since)
        if backend is not None:
            spent, waiting = spent.where(c.backend == backend), waiting.where(c.backend == backend)
        with self.engine.connect() as conn:
            total = conn.execute(spent).scalar_one()
            if pending:
                total += conn.execute(waiting).scalar_one()
        return float(total)

    def to_records(self) -> list[dict]:
        """One flat dict per request (labels as their own columns) for a cost report."""
        records = []
        for entry in self.entries():
            record = {name: getattr(entry, name) for name in _RECORD_FIELDS}
            record["state"] = entry.state.value
            record["files"] = len(entry.files or [])
            record.update(entry.labels)
            records.append(record)
        return records


_PENDING = (State.CLAIMED.value, State.SUBMITTED.value, State.IN_DOUBT.value)


def _check_cost_kind(kind: str) -> None:
    if kind not in COST_KINDS:
        raise ValueError(f"journal: cost_kind {kind!r} is not one of {', '.join(COST_KINDS)}")


def _entry(row: Mapping[str, Any]) -> Entry:
    values = {name: row[name] for name in row.keys() if name not in _JSON_COLUMNS}
    for column, name in _JSON_COLUMNS.items():
        values[name] = None if row[column] is None else json.loads(row[column])
    values["state"] = State(values["state"])
    return Entry(**values)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()
