"""The one interface every backend speaks: fal's queue protocol, as Python calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class QueueStatus:
    """Where a request stands: ``IN_QUEUE`` (with position), ``IN_PROGRESS`` or ``COMPLETED``."""

    state: str
    queue_position: int | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.state == "COMPLETED"


class TransientError(Exception):
    """A failure worth retrying: 429, 5xx, a dropped connection, a timeout."""


class MaybeAccepted(TransientError):
    """A submit whose answer was lost after it was sent (a read timeout, a connection
    dropped mid-answer): fal may hold a paid job for it, and no client can tell."""


class RequestGone(Exception):
    """The backend no longer knows this request id (fal keeps results about an hour)."""


class Backend(Protocol):
    """What the generator needs from a place that runs requests.

    ``billed`` says whether the backend's costs are real money (fal) or estimates
    (local). ``label`` is what metadata records as ``backend``.
    """

    label: str
    billed: bool

    async def submit(self, endpoint: str, arguments: dict[str, Any]) -> str: ...

    async def status(self, endpoint: str, request_id: str) -> QueueStatus: ...

    async def result(self, endpoint: str, request_id: str) -> dict[str, Any]: ...

    async def download(self, url: str) -> tuple[bytes, str]: ...

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str: ...

    async def cancel(self, endpoint: str, request_id: str) -> None: ...

    async def aclose(self) -> None: ...
