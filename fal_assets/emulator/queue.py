"""The emulator's queue: jobs, at most N in progress, positions, the billing ledger."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

log = logging.getLogger("fal_assets.emulator")

IN_QUEUE, IN_PROGRESS, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"


def arguments_sha256(arguments: Any) -> str:
    """sha256 hex of the canonical JSON of a request body as submitted."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Job:
    request_id: str
    endpoint: str  # as submitted: owner/alias[/path]
    arguments: dict[str, Any]  # validated, with the seed the emulator picked
    arguments_sha256: str
    host: str  # host:port the client used, for the URLs we hand back
    nsfw: bool = False
    webhook: str | None = None
    state: str = IN_QUEUE
    cancelled: bool = False
    logs: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
    error_status: int = 0
    error_body: dict[str, Any] | None = None
    inference_time: float | None = None
    rejection: dict[str, Any] | None = None  # a 422 body answered at result time

    @property
    def app(self) -> str:
        """``owner/alias``: the part of the endpoint the queue URLs keep."""
        return "/".join(self.endpoint.split("/")[:2])

    def base_url(self) -> str:
        return f"https://{self.host}/{self.app}/requests/{self.request_id}"

    def log(self, message: str, level: str = "INFO") -> None:
        self.logs.append({"message": message, "level": level, "source": "user", "timestamp": _now()})

    def fail(self, status: int, error_type: str, message: str, body: dict[str, Any]) -> None:
        self.error, self.error_type, self.error_status, self.error_body = message, error_type, status, body


@dataclass
class Ledger:
    """What fal would have charged: one row per completed (billed) request."""

    submit_attempts: int = 0
    submitted: int = 0
    status_gets: int = 0  # status polls answered
    status_streams: int = 0  # status streams opened
    cancelled: int = 0
    billed: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # 422 at result time (billed $0 here)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # every job accepted, billed or not yet

    def accept(self, job: Job) -> None:
        self.accepted.append(
            {"request_id": job.request_id, "endpoint": job.endpoint, "arguments_sha256": job.arguments_sha256}
        )

    def reject(self, job: Job) -> None:
        self.rejected.append(
            {"request_id": job.request_id, "endpoint": job.endpoint, "arguments_sha256": job.arguments_sha256}
        )

    def bill(self, job: Job, cost_usd: float, priced: bool) -> None:
        self.billed.append(
            {
                "request_id": job.request_id,
                "endpoint": job.endpoint,
                "cost_usd": cost_usd,
                "priced": priced,
                "arguments_sha256": job.arguments_sha256,
            }
        )

    def total_usd(self) -> float:
        return round(sum(row["cost_usd"] for row in self.billed), 10)


class JobQueue:
    """FIFO queue served by ``concurrency`` workers; only in-progress jobs take a slot."""

    def __init__(self, concurrency: int, process: Callable[[Job], Awaitable[None]]):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.jobs: dict[str, Job] = {}
        self.waiting: list[Job] = []
        self.in_progress = 0
        self.max_in_progress = 0
        self._process = process
        self._wake = asyncio.Condition()
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def put(self, job: Job) -> None:
        self.jobs[job.request_id] = job
        async with self._wake:
            self.waiting.append(job)
            self._wake.notify()

    def position(self, job: Job) -> int:
        """0-indexed rank among the jobs still waiting."""
        return self.waiting.index(job)

    def cancel_waiting(self, job: Job) -> bool:
        """Take a waiting job out of the queue; False when it already left it."""
        if job in self.waiting:
            self.waiting.remove(job)
            return True
        return False

    def clear(self) -> None:
        """Forget finished jobs (in-progress and waiting ones keep running)."""
        live = {job.request_id for job in self.waiting} | {
            rid for rid, job in self.jobs.items() if job.state == IN_PROGRESS
        }
        self.jobs = {rid: job for rid, job in self.jobs.items() if rid in live}
        self.max_in_progress = self.in_progress

    async def _worker(self) -> None:
        while True:
            async with self._wake:
                await self._wake.wait_for(lambda: bool(self.waiting))
                job = self.waiting.pop(0)
            self.in_progress += 1
            self.max_in_progress = max(self.max_in_progress, self.in_progress)
            try:
                await self._process(job)
            except Exception:  # keep the slot serving; the job's own error was recorded
                log.exception("worker failed on %s", job.request_id)
            finally:
                self.in_progress -= 1
