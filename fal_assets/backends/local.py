"""The offline backend: fal's request and response shapes, rendered locally for $0."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

from ..errors import GenerationFailed
from ..jobs import JobOutput, run_job
from ..media import read_local
from .base import QueueStatus, RequestGone

SCHEME = "local://"


class LocalBackend:
    """Runs each request in a worker thread with the local renderer.

    Results live in this process only: a request id from an earlier process is
    ``RequestGone`` and the generator simply renders it again (it is free).
    """

    label = "local"
    billed = False

    @property
    def key_prefix(self) -> str:
        """Journal keys name the renderer, so a new renderer draws afresh instead of
        replaying pictures the old one made."""
        from ..render import RENDERER_ID

        return f"local@{RENDERER_ID}"

    def __init__(self, workers: int | None = None):
        self._jobs: dict[str, asyncio.Task[JobOutput]] = {}
        self._media: dict[str, tuple[bytes, str]] = {}
        self._limit = asyncio.Semaphore(workers or 2) if workers else None

    def _fetch(self, url: str) -> tuple[bytes, str]:
        if url.startswith(SCHEME):
            if url not in self._media:
                raise GenerationFailed(f"{url}: not held by this local backend")
            return self._media[url]
        local = read_local(url)
        if local is None:
            raise GenerationFailed(f"{url}: the local backend reads only data URIs, local files and its own media")
        return local

    async def _run(self, endpoint: str, arguments: dict[str, Any]) -> JobOutput:
        if self._limit is None:
            return await asyncio.to_thread(run_job, endpoint, arguments, self._fetch)
        async with self._limit:
            return await asyncio.to_thread(run_job, endpoint, arguments, self._fetch)

    async def submit(self, endpoint: str, arguments: dict[str, Any]) -> str:
        request_id = str(uuid.uuid4())
        self._jobs[request_id] = asyncio.ensure_future(self._run(endpoint, arguments))
        return request_id

    def _task(self, request_id: str) -> asyncio.Task[JobOutput]:
        task = self._jobs.get(request_id)
        if task is None:
            raise RequestGone(request_id)
        return task

    async def status(self, endpoint: str, request_id: str) -> QueueStatus:
        task = self._task(request_id)
        if not task.done():
            return QueueStatus("IN_PROGRESS")
        error = task.exception()
        return QueueStatus("COMPLETED", error=str(error) if error else None)

    async def result(self, endpoint: str, request_id: str) -> dict[str, Any]:
        output = await self._task(request_id)
        urls = []
        for data, content_type, name in output.files:
            url = f"{SCHEME}{request_id}/{name}"
            self._media[url] = (data, content_type)
            urls.append(url)
        return output.with_urls(urls)

    async def download(self, url: str) -> tuple[bytes, str]:
        return self._fetch(url)

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        url = f"{SCHEME}upload/{digest}/{file_name}"
        self._media[url] = (data, content_type)
        return url

    async def cancel(self, endpoint: str, request_id: str) -> None:
        self._task(request_id).cancel()

    async def aclose(self) -> None:
        for task in self._jobs.values():
            task.cancel()
        self._jobs.clear()
        self._media.clear()
