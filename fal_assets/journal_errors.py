"""A journal that cannot be used, said in one line: which journal, what is wrong, what to do.

SQLAlchemy's errors are dozens of lines and name neither the journal nor a fix. The
translation is attached to the journal's engine (``watch``), so every use of it (the
journal, the upload cache) reports the same way; a URL that does not even make an
engine goes through ``unavailable`` directly. Passwords never reach the line.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from .errors import InvalidInput, Problem

ELSEWHERE = "or point --journal / FAL_ASSETS_JOURNAL_URL at another journal"
URL_FORMS = "sqlite:///PATH or postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DATABASE"


class JournalUnavailable(InvalidInput):
    """The journal cannot be opened, read or written; nothing was sent because of it."""


def safe_url(url: str) -> str:
    """The URL with its password hidden (also when SQLAlchemy cannot parse it)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL may still hold a password
        return re.sub(r"//[^/@]*@", "//***@", str(url))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def _sqlite_file(url: str) -> Path | None:
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def explain(url: str, exc: BaseException) -> str:
    """What is wrong and what to do, for an error opening or using the journal at ``url``."""
    detail = _first_line(exc)
    lowered = detail.lower()
    file = _sqlite_file(url)
    if isinstance(exc, ImportError):
        name = getattr(exc, "name", None) or detail
        return f"needs the Python driver {name!r}, which is not installed; install it, or use {URL_FORMS}"
    if isinstance(exc, ArgumentError):
        return f"is not a database URL this journal can use ({detail}); allowed: {URL_FORMS}"
    if file is not None:
        if "unable to open database file" in lowered:
            if not file.parent.is_dir():
                return f"the folder {file.parent} does not exist; create it, {ELSEWHERE}"
            return f"cannot open {file} (permissions?); make it and its folder readable and writable, {ELSEWHERE}"
        if "readonly" in lowered or "read-only" in lowered:
            return f"{file} (or its folder) is read-only; make both writable (SQLite writes a -wal file beside it), {ELSEWHERE}"
        if "locked" in lowered or "busy" in lowered:
            return "is locked: another process held it for longer than the journal waits (30 s); let that process finish (or stop it), then run again"
        if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
            return (f"{file} is not a readable SQLite database (corrupt, or another kind of file); restore it from a backup, "
                    "or move it aside to start a new journal (a new journal forgets what was already paid for)")
        return f"SQLite cannot use it: {detail}; check the file and the disk, {ELSEWHERE}"
    if "connection refused" in lowered or "could not connect" in lowered or "timeout expired" in lowered:
        try:
            parsed = make_url(url)
            at = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
        except Exception:  # noqa: BLE001
            at = "the server"
        return f"cannot connect to {at} ({detail}); start the database server there or fix the host and port in the URL"
    if "authentication failed" in lowered or "password" in lowered:
        return f"the server refused the login ({detail}); fix the user or password in the URL"
    if "does not exist" in lowered:
        return f"{detail}; create it first (createdb), or fix the URL"
    return f"cannot use it: {detail}"


def unavailable(url: str, exc: BaseException) -> JournalUnavailable:
    return JournalUnavailable([Problem(f"journal {safe_url(url)}", "", explain(url, exc))])


def watch(engine, url: str) -> None:
    """Turn the engine's connection and storage errors into ``JournalUnavailable``.
    Integrity errors (a race the journal decides by primary key) pass through."""

    def translate(context) -> None:
        original = context.sqlalchemy_exception or context.original_exception
        if isinstance(original, IntegrityError) or not isinstance(original, DBAPIError):
            return
        if type(original).__name__ not in ("OperationalError", "DatabaseError", "InterfaceError"):
            return  # a programming error is a bug: keep its traceback
        raise unavailable(url, original) from original

    event.listen(engine, "handle_error", translate)
