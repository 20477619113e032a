"""Uploaded files, once per content hash: the URL fal holds for each, and until when.

A FLUX.2 LoRA is about 300 MB; eight poses would upload it eight times. The generator
asks :class:`UploadCache` first: a URL still valid (with a margin) is reused across
poses, runs and processes. It lives in the journal's database (its own table,
``fal_uploads``), so every worker sharing the journal shares it. A URL fal returned as
a result (the trainer's LoRA) is recorded too, and preferred while it is valid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.schema import CreateTable

from .journal import Journal, _UTCDateTime

#: fal_client uploads with this lifetime; the cache trusts a URL until then minus the margin.
UPLOAD_LIFETIME = "7d"
UPLOAD_LIFETIME_S = 7 * 24 * 3600.0
#: How long a result URL fal returned is taken to stay valid (fal: "temporary").
RESULT_URL_LIFETIME_S = 3600.0
#: A URL is reused only if it stays valid this much longer (a queued job fetches it later).
REUSE_MARGIN_S = 600.0

_metadata = MetaData()
uploads = Table(
    "fal_uploads", _metadata,
    Column("backend", String(32), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("origin", String(16), nullable=False),  # upload | result
    Column("created_at", _UTCDateTime, nullable=False),
    Column("expires_at", _UTCDateTime, nullable=False),
)


@dataclass(frozen=True)
class Uploaded:
    url: str
    expires_at: datetime
    origin: str


class UploadCache:
    """``get`` a still-valid URL for a file's sha256; ``put`` one after an upload."""

    def __init__(self, journal: Journal, backend: str, *, margin_s: float = REUSE_MARGIN_S):
        self.engine = journal.engine
        self.backend = backend
        self.margin = timedelta(seconds=margin_s)
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    conn.execute(CreateTable(uploads, if_not_exists=True))
                break
            except DBAPIError:
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def get(self, sha256: str) -> Uploaded | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(uploads).where(uploads.c.backend == self.backend,
                                                     uploads.c.sha256 == sha256)).mappings().first()
        if row is None or row["expires_at"] - self.margin <= datetime.now(timezone.utc):
            return None
        return Uploaded(row["url"], row["expires_at"], row["origin"])

    def put(self, sha256: str, url: str, size: int, *, lifetime_s: float, origin: str = "upload") -> None:
        """Record (or replace) the URL for ``sha256``. Only http(s) URLs: a data URI is no upload."""
        if not url.startswith(("https://", "http://")):
            return
        now = datetime.now(timezone.utc)
        values = dict(url=url, size=size, origin=origin, created_at=now, expires_at=now + timedelta(seconds=lifetime_s))
        try:
            with self.engine.begin() as conn:
                conn.execute(uploads.insert().values(backend=self.backend, sha256=sha256, **values))
            return
        except IntegrityError:
            pass  # a row exists (expired, or another worker's): the newest expiry wins
        with self.engine.begin() as conn:
            conn.execute(uploads.update().where(uploads.c.backend == self.backend, uploads.c.sha256 == sha256,
                                                uploads.c.expires_at < values["expires_at"]).values(**values))
