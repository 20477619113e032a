"""The real fal path: ``fal_client.AsyncClient`` against fal's queue (or our emulator).

The key comes only from the environment (``FAL_KEY``, or the legacy ``FAL_AI_API_KEY``)
or from the caller, and is never logged, stored or echoed in an error.
"""

from __future__ import annotations

import json
import os
from typing import Any, AsyncIterator

import httpx

from ..errors import FalAssetsError, InvalidInput, Problem
from ..media import decode_data_uri, to_data_uri
from .base import MaybeAccepted, QueueStatus, RequestGone, TransientError

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
#: Inputs up to this size travel inside the request as data URIs; bigger ones go to fal's CDN.
DATA_URI_MAX_BYTES = 1024 * 1024
#: fal's status stream sends a comment every 15 s; silence for this long means it broke.
STREAM_READ_TIMEOUT = 45.0


def point_uploads_at(host: str) -> None:
    """Send fal_client's uploads to ``host`` (the emulator): its token request (REST_URL,
    rest.fal.ai on fal) and its CDN POST (CDN_URL, v3.fal.media) are module globals,
    read when an upload starts, not from the environment."""
    import fal_client.client as client

    client.REST_URL = f"https://{host}"
    client.CDN_URL = f"https://{host}"


class MissingKey(InvalidInput):
    """The fal backend was asked for without a key: a setup error (exit 2), not a failure."""

    def __init__(self) -> None:
        super().__init__([Problem("fal backend", "FAL_KEY", "is not set; export your fal.ai key as FAL_KEY, or use the local backend (--backend local)")])


def key_from_env() -> str | None:
    return os.environ.get("FAL_KEY") or os.environ.get("FAL_AI_API_KEY") or None


def queue_host() -> str:
    """The queue host fal_client uses (read by fal_client at import time)."""
    import fal_client.client as client

    return client.QUEUE_URL_FORMAT.removeprefix("https://").rstrip("/")


def is_real_fal() -> bool:
    host = queue_host().split(":")[0]
    return host.endswith("fal.run") or host.endswith("falrun.com")


def unprocessable(endpoint: str, body: Any) -> InvalidInput:
    """fal's 422 body, field by field."""
    detail = body.get("detail") if isinstance(body, dict) else body
    problems = []
    if isinstance(detail, list):
        for item in detail:
            loc = [str(p) for p in item.get("loc", []) if p != "body"]
            problems.append(Problem(endpoint, "arguments." + ".".join(loc) if loc else "arguments", str(item.get("msg"))))
    if not problems:
        problems.append(Problem(endpoint, "arguments", f"fal rejected the request: {detail}"))
    return InvalidInput(problems)


class FalBackend:
    """fal's queue through the official client. ``label`` is ``fal``, or ``emulator``
    when ``FAL_QUEUE_RUN_HOST`` points somewhere other than fal."""

    billed = True

    def __init__(self, key: str | None = None, *, request_timeout: float = 60.0, upload: str = "auto",
                 data_uri_max_bytes: int = DATA_URI_MAX_BYTES):
        key = key or key_from_env()
        if not key:
            raise MissingKey()
        import fal_client

        self._fal = fal_client
        self._client = fal_client.AsyncClient(key=key, default_timeout=request_timeout)
        self._http = httpx.AsyncClient(timeout=request_timeout, follow_redirects=True)
        # Status streams hold a connection each for a request's whole wait; a pool that keeps
        # them all alive lets the next request's stream reuse one instead of a new TLS handshake.
        self._streams = httpx.AsyncClient(headers={"Authorization": f"Key {key}"},
                                          limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
                                          timeout=httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT))
        self.label = "fal" if is_real_fal() else "emulator"
        if upload not in ("auto", "cdn", "data-uri"):
            raise ValueError(f"upload must be auto, cdn or data-uri, got {upload!r}")
        # auto: small inputs as data URIs (no round trip), the rest through fal's CDN.
        self._upload = upload
        self.data_uri_max_bytes = data_uri_max_bytes
        if self.label == "emulator":
            point_uploads_at(queue_host())

    def _translate(self, endpoint: str, exc: Exception) -> Exception:
        fal = self._fal
        if isinstance(exc, fal.FalClientHTTPError):
            if exc.status_code == 422:
                try:
                    return unprocessable(endpoint, exc.response.json())
                except ValueError:
                    return unprocessable(endpoint, exc.message)
            if exc.status_code in (404, 410):
                return RequestGone(f"{endpoint}: {exc.status_code} {exc.message}")
            if exc.status_code in RETRY_STATUS:
                return TransientError(f"{endpoint}: HTTP {exc.status_code} {exc.error_type or ''} {exc.message}".strip())
            if exc.status_code == 401 or exc.status_code == 403:
                return FalAssetsError(f"{endpoint}: fal refused the key (HTTP {exc.status_code}); check FAL_KEY")
            return FalAssetsError(f"{endpoint}: HTTP {exc.status_code}: {exc.message}")
        if isinstance(exc, (httpx.TransportError, fal.FalClientTimeoutError, TimeoutError)):
            return TransientError(f"{endpoint}: {type(exc).__name__}: {exc}")
        return exc

    async def _call(self, endpoint: str, coro):
        try:
            return await coro
        except Exception as exc:  # translated into the generator's vocabulary
            translated = self._translate(endpoint, exc)
            if translated is exc:
                raise
            raise translated from exc

    async def submit(self, endpoint: str, arguments: dict[str, Any]) -> str:
        """One submit. 429 and 5xx (fal bills neither) and a connection never made are
        ``TransientError``: safe to send again. An answer lost after the request went out
        is ``MaybeAccepted``. (fal_client itself re-sends on some transport errors; that
        window is its own and cannot be closed from outside.)"""
        try:
            handle = await self._client.submit(endpoint, arguments)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransientError(f"{endpoint}: submit could not connect: {type(exc).__name__}") from exc
        except (httpx.TransportError, self._fal.FalClientTimeoutError, TimeoutError) as exc:
            raise MaybeAccepted(f"{endpoint}: the submit's answer was lost ({type(exc).__name__})") from exc
        except Exception as exc:
            translated = self._translate(endpoint, exc)
            if translated is exc:
                raise
            raise translated from exc
        return handle.request_id

    async def status(self, endpoint: str, request_id: str) -> QueueStatus:
        status = await self._call(endpoint, self._client.status(endpoint, request_id, with_logs=True))
        return self._queue_status(status)

    def _queue_status(self, status) -> QueueStatus:
        fal = self._fal
        if isinstance(status, fal.Queued):
            return QueueStatus("IN_QUEUE", queue_position=status.position)
        if isinstance(status, fal.InProgress):
            return QueueStatus("IN_PROGRESS", logs=list(status.logs or []))
        return QueueStatus("COMPLETED", logs=list(status.logs or []), error=status.error)

    async def watch(self, endpoint: str, request_id: str) -> AsyncIterator[QueueStatus]:
        """Status changes as fal pushes them (``.../status/stream``, server-sent events):
        one open connection per request instead of a status GET every poll interval.
        Ends after COMPLETED; a stream that breaks raises ``TransientError`` (poll instead)."""
        handle = await self._call(endpoint, self._client.get_handle(endpoint, request_id))
        try:
            async with self._streams.stream("GET", handle.status_url + "/stream", params={"logs": 1}) as response:
                if response.status_code >= 400:  # the status GET has the last word (a 404 there is "gone")
                    raise TransientError(f"{endpoint}: status stream for {request_id} answered HTTP {response.status_code}")
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # keep-alive comments and blank separators
                    status = self._queue_status(handle._parse_status(json.loads(line[5:])))
                    yield status
                    if status.done:
                        return
        except (httpx.TransportError, ValueError) as exc:
            raise TransientError(f"{endpoint}: status stream for {request_id} broke ({type(exc).__name__})") from exc
        raise TransientError(f"{endpoint}: status stream for {request_id} ended before COMPLETED")

    async def result(self, endpoint: str, request_id: str) -> dict[str, Any]:
        # The result GET alone: the caller already knows the request is COMPLETED, and
        # fal_client's handle.get() would ask for the status once more first.
        from fal_client.client import QUEUE_POLL_TIMEOUT, _async_maybe_retry_request, _raise_for_status

        async def get() -> dict[str, Any]:
            handle = await self._client.get_handle(endpoint, request_id)
            response = await _async_maybe_retry_request(handle.client, "GET", handle.response_url, timeout=QUEUE_POLL_TIMEOUT)
            _raise_for_status(response)
            return response.json()

        return await self._call(endpoint, get())

    async def download(self, url: str) -> tuple[bytes, str]:
        if url.startswith("data:"):
            return decode_data_uri(url)
        if not url.startswith(("https://", "http://")):
            raise FalAssetsError(f"refusing to download {url[:60]!r}: a result URL must be https, http or data")
        try:
            response = await self._http.get(url)
        except httpx.TransportError as exc:
            raise TransientError(f"download {url}: {type(exc).__name__}") from exc
        if response.status_code in RETRY_STATUS:
            raise TransientError(f"download {url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise RequestGone(f"download {url}: HTTP {response.status_code}")
        return response.content, response.headers.get("content-type", "application/octet-stream")

    def uploads_to_cdn(self, size: int) -> bool:
        """Whether a file of ``size`` bytes goes through fal's CDN (else a data URI)."""
        return self._upload == "cdn" or (self._upload == "auto" and size > self.data_uri_max_bytes)

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        if not self.uploads_to_cdn(len(data)):
            return to_data_uri(data, content_type)
        from ..uploads import UPLOAD_LIFETIME

        lifecycle = self._fal.StorageSettings(expires_in=UPLOAD_LIFETIME)  # the upload cache trusts this lifetime
        return await self._call("upload", self._client.upload(data, content_type, file_name, lifecycle=lifecycle))

    async def cancel(self, endpoint: str, request_id: str) -> None:
        await self._call(endpoint, self._client.cancel(endpoint, request_id))

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._streams.aclose()
