"""The emulator's HTTPS server (aiohttp): fal's queue routes, media, ledger, faults."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from aiohttp import web

from ..errors import InvalidInput
from .faults import FaultDice, parse_faults
from .queue import COMPLETED, IN_PROGRESS, IN_QUEUE, Job, JobQueue, Ledger, arguments_sha256
from .work import MediaStore, Outcome, execute, short, unprocessable_body

log = logging.getLogger("fal_assets.emulator")

REQUEST_ROUTE = re.compile(r"^/(?P<app>[^/]+/[^/]+(?:/.+?)?)/requests/(?P<rid>[^/]+)(?P<action>/status/stream|/status|/cancel)?/?$")
AUTH = re.compile(r"^Key\s+\S+")
MAX_BODY = 512 * 1024 * 1024  # data URIs of datasets can be large
REJECT_AT = ("result", "submit")
STREAM_TICK = 0.02  # how often a status stream looks for a change (server side, no HTTP)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=dict(headers or {}))


class Emulator:
    """fal's queue, in memory. ``validate``, ``estimate`` and ``run_job`` default to the
    library's own (``fal_assets.validation``, ``pricing``, ``jobs``)."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        concurrency: int = 2,
        faults: Mapping[str, float] | None = None,
        seed: int | None = None,
        hang_seconds: float = 60.0,
        validate: Callable[[str, dict], dict] | None = None,
        estimate: Callable[..., Any] | None = None,
        run_job: Callable[..., Any] | None = None,
        picks_seed: Callable[[str], bool] | None = None,
        reject_at: str = "result",
    ):
        if reject_at not in REJECT_AT:
            raise ValueError(f"reject_at must be one of {', '.join(REJECT_AT)}, got {reject_at!r}")
        # fal accepts an invalid request, runs it to COMPLETED and answers the 422 from the
        # result GET ("result", fal's behaviour); "submit" answers it at once (the old mode).
        self.reject_at = reject_at
        if validate is None:
            from ..validation import validate
        if estimate is None:
            from ..pricing import estimate
        if run_job is None:
            from ..jobs import run_job
        self.validate, self.estimate, self.run_job = validate, estimate, run_job
        self.picks_seed = picks_seed or _takes_seed
        self.latency = latency
        self.hang_seconds = hang_seconds
        self.seed = seed
        self.dice = FaultDice(faults, seed)
        self.ledger = Ledger()
        self.media = MediaStore(set())
        self.uploads = Uploads()
        self.cdn_secret = uuid.uuid4().hex
        self.cdn_token_seconds = 3600.0
        self.keepalive_seconds = 15.0  # fal's status stream sends a comment line this often
        self.queue = JobQueue(concurrency, self._process)
        self.executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="emulator-render")
        self.stopping = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()

    # --- application -------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_request_id_header])
        app.router.add_get("/_emulator/ledger", self.get_ledger)
        app.router.add_post("/_emulator/reset", self.reset)
        app.router.add_get("/_media/{rid}/{name}", self.get_media)
        # fal's upload path (fal_client's REST_URL and CDN_URL point here in tests):
        # a CDN token from rest.fal.ai, then v3.fal.media/files/upload (multipart above 100 MiB).
        app.router.add_post("/storage/auth/token", self.cdn_token)
        app.router.add_post("/files/upload", self.upload_file)
        app.router.add_post("/files/upload/multipart", self.multipart_create)
        app.router.add_put("/_files/{fid}/{name}/multipart/{uid}/{part}", self.multipart_part)
        app.router.add_post("/_files/{fid}/{name}/multipart/{uid}/complete", self.multipart_complete)
        app.router.add_get("/_files/{fid}/{name}", self.get_media)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        self.queue.start()

    async def _on_cleanup(self, _app: web.Application) -> None:
        self.stopping.set()
        await self.queue.stop()
        for task in list(self._background):
            task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return await self.submit(request)
        match = REQUEST_ROUTE.match(request.path)
        if match is None:
            return _json({"detail": f"Not found: {request.path}"}, 404)
        action, method = match["action"], request.method
        if (method, action) == ("GET", "/status"):
            return await self.status(request, match["app"], match["rid"])
        if (method, action) == ("GET", "/status/stream"):
            return await self.status_stream(request, match["app"], match["rid"])
        if (method, action) == ("GET", None):
            return await self.result(request, match["app"], match["rid"])
        if (method, action) == ("PUT", "/cancel"):
            return await self.cancel(request, match["app"], match["rid"])
        return _json({"detail": "Method not allowed"}, 405)

    # --- faults --------------------------------------------------------------------
    async def _fault(self, request: web.Request, call: str) -> web.StreamResponse | None:
        kind = self.dice.draw(call)
        if kind is None:
            return None
        log.info("fault %s on %s %s", kind, request.method, request.path)
        if kind == "429":
            return _json({"detail": "Rate limit exceeded"}, 429)
        if kind == "503":
            error_type = "runner_scheduling_failure"
            body = {"detail": "No runner could be scheduled for the request (emulated)", "error_type": error_type}
            return _json(body, 503, {"X-Fal-Error-Type": error_type})
        if kind == "hang":
            try:
                await asyncio.wait_for(self.stopping.wait(), self.hang_seconds)
            except asyncio.TimeoutError:
                pass
        # drop, and a hang that ran out: close the connection without an answer.
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never sent: the transport is gone

    # --- queue routes --------------------------------------------------------------
    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if AUTH.match(request.headers.get("Authorization", "")):
            return None
        detail = "Missing or malformed Authorization header: send 'Authorization: Key <FAL_KEY>'"
        return _json({"detail": detail}, 401)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        self.ledger.submit_attempts += 1
        if (denied := self._unauthorized(request)) is not None:
            return denied
        if (fault := await self._fault(request, "submit")) is not None:
            return fault
        endpoint = request.path.strip("/")
        if (unknown := _unknown_app(endpoint)) is not None:
            log.info("404 for %s: %s", endpoint, unknown)
            return _json({"detail": unknown}, 404)
        try:
            arguments = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _json({"detail": [{"loc": ["body"], "msg": "body is not valid JSON", "type": "json_invalid"}]}, 422)
        if not isinstance(arguments, dict):
            return _json({"detail": [{"loc": ["body"], "msg": "body must be a JSON object", "type": "dict_type"}]}, 422)
        rejection: dict[str, Any] | None = None
        try:
            validated = dict(self.validate(endpoint, arguments))
        except InvalidInput as exc:
            log.info("rejected %s at %s time: %s", endpoint, self.reject_at, "; ".join(exc.lines()))
            if self.reject_at == "submit":
                return _json(unprocessable_body(exc), 422)
            validated, rejection = dict(arguments), unprocessable_body(exc)
        except Exception as exc:  # a bug in validation: answer like fal's 500, keep serving
            log.exception("validation of %s failed", endpoint)
            return _json({"detail": f"Internal error: {type(exc).__name__}", "error_type": "internal_error"}, 500)
        if validated.get("seed") is None and self.picks_seed(endpoint):
            validated["seed"] = self.dice.seed_value()
        job = Job(
            request_id=str(uuid.uuid4()),
            endpoint=endpoint,
            arguments=validated,
            arguments_sha256=arguments_sha256(arguments),
            host=request.host,
            nsfw=self.dice.draw("job") == "nsfw",
            webhook=request.query.get("fal_webhook"),
            rejection=rejection,
        )
        job.log("Request accepted")
        await self.queue.put(job)
        self.ledger.submitted += 1
        self.ledger.accept(job)
        log.info("accepted %s %s", job.request_id, endpoint)
        body = {
            **self._urls(job),
            "status": IN_QUEUE,
            "queue_position": self.queue.position(job) if job in self.queue.waiting else 0,
            "gateway_request_id": job.request_id,
        }
        return _json(body, 200, {"x-fal-request-id": job.request_id})

    def _urls(self, job: Job) -> dict[str, str]:
        base = job.base_url()
        return {
            "request_id": job.request_id,
            "response_url": base,
            "status_url": base + "/status",
            "cancel_url": base + "/cancel",
        }

    def _job(self, app: str, request_id: str) -> Job | None:
        job = self.queue.jobs.get(request_id)
        if job is None or app not in (job.endpoint, job.app):
            return None
        return job

    def _lookup(self, request: web.Request, app: str, request_id: str) -> tuple[Job | None, web.Response | None]:
        if (denied := self._unauthorized(request)) is not None:
            return None, denied
        job = self._job(app, request_id)
        if job is None:
            return None, _json({"detail": f"Request {request_id} not found"}, 404)
        return job, None

    async def status(self, request: web.Request, app: str, request_id: str) -> web.StreamResponse:
        job, answer = self._lookup(request, app, request_id)
        if job is None:
            return answer
        if (fault := await self._fault(request, "status")) is not None:
            return fault
        self.ledger.status_gets += 1
        body = self._status_body(job, with_logs=request.query.get("logs", "0").lower() in ("1", "true"))
        return _json(body, 200 if job.state == COMPLETED else 202, {"x-fal-request-id": job.request_id})

    def _status_body(self, job: Job, *, with_logs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {**self._urls(job), "status": job.state}
        logs = list(job.logs) if with_logs else None
        if job.state == IN_QUEUE:
            body["queue_position"] = self.queue.position(job)
        elif job.state == IN_PROGRESS:
            body["logs"] = logs
        else:
            body["logs"] = logs
            body["metrics"] = {"inference_time": job.inference_time} if job.inference_time is not None else {}
            if job.error is not None and job.rejection is None:
                body["error"], body["error_type"] = job.error, job.error_type
        return body

    async def status_stream(self, request: web.Request, app: str, request_id: str) -> web.StreamResponse:
        """fal's ``GET .../requests/{id}/status/stream``: server-sent events, one ``data:``
        line with the status object (the fields of the status GET) whenever it changes, a
        comment line every ``keepalive_seconds`` (fal: 15 s), closed after COMPLETED."""
        job, answer = self._lookup(request, app, request_id)
        if job is None:
            return answer
        if (fault := await self._fault(request, "status")) is not None:
            return fault
        self.ledger.status_streams += 1
        with_logs = request.query.get("logs", "0").lower() in ("1", "true")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "x-fal-request-id": job.request_id})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        sent, quiet_since = None, loop.time()
        while not self.stopping.is_set():
            body = self._status_body(job, with_logs=with_logs)
            seen = (body["status"], body.get("queue_position"), len(body.get("logs") or []))
            if seen != sent:
                await response.write(b"data: " + json.dumps(body).encode() + b"\n\n")
                sent, quiet_since = seen, loop.time()
                if body["status"] == COMPLETED:
                    break
            elif loop.time() - quiet_since >= self.keepalive_seconds:
                await response.write(b": keep-alive\n\n")
                quiet_since = loop.time()
            await asyncio.sleep(STREAM_TICK)
        await response.write_eof()
        return response

    async def result(self, request: web.Request, app: str, request_id: str) -> web.StreamResponse:
        job, answer = self._lookup(request, app, request_id)
        if job is None:
            return answer
        if (fault := await self._fault(request, "result")) is not None:
            return fault
        headers = {"x-fal-request-id": job.request_id}
        if job.state != COMPLETED:
            return _json({"detail": "Request is still in progress"}, 400, headers)
        if job.error is not None:
            if job.error_type:
                headers["X-Fal-Error-Type"] = job.error_type
            return _json(job.error_body or {"detail": job.error}, job.error_status or 500, headers)
        return _json(job.result, 200, headers)

    async def cancel(self, request: web.Request, app: str, request_id: str) -> web.StreamResponse:
        job, answer = self._lookup(request, app, request_id)
        if job is None:
            if answer is not None and answer.status == 404:
                return _json({"status": "NOT_FOUND", "detail": f"Request {request_id} not found"}, 404)
            return answer
        headers = {"x-fal-request-id": job.request_id}
        if job.state == COMPLETED:
            return _json({"status": "ALREADY_COMPLETED"}, 400, headers)
        if self.queue.cancel_waiting(job):
            job.cancelled = True
            job.state = COMPLETED
            job.fail(400, "request_cancelled", "Request was cancelled", {"detail": "Request was cancelled"})
            job.log("Request cancelled while in queue")
            self.ledger.cancelled += 1
            log.info("cancelled %s while queued (not billed)", job.request_id)
        else:
            # In progress: fal signals the runner; the emulated app finishes (and is billed).
            job.log("Cancellation requested while in progress; the runner finishes the request")
        return _json({"status": "CANCELLATION_REQUESTED"}, 202, headers)

    # --- work ----------------------------------------------------------------------
    async def _process(self, job: Job) -> None:
        job.state = IN_PROGRESS
        job.log("Request started")
        loop = asyncio.get_running_loop()
        # The job takes --latency (fal's GPU time); the local render that stands in for
        # the model runs during it rather than after it.
        started = loop.time()
        if job.rejection is not None:  # fal runs an invalid request too, then answers 422
            await asyncio.sleep(self.latency)
            job.fail(422, "validation_error", "; ".join(str(d.get("msg")) for d in job.rejection["detail"]), job.rejection)
            job.log("Request failed validation", "ERROR")
            self.ledger.reject(job)
            job.state = COMPLETED
            return
        try:
            outcome = await loop.run_in_executor(
                self.executor,
                lambda: execute(
                    job.endpoint,
                    job.arguments,
                    fetch=self.media.fetch,
                    run_job=self.run_job,
                    estimate=self.estimate,
                    nsfw=job.nsfw,
                ),
            )
            await asyncio.sleep(max(0.0, self.latency - (loop.time() - started)))
        except Exception as exc:  # a bug after rendering (pricing, flagging): fail the job, not the worker
            log.exception("job %s failed", job.request_id)
            message = f"{type(exc).__name__}: {exc}"
            outcome = Outcome(error=message, error_type="internal_error", error_status=500,
                              error_body={"detail": message, "error_type": "internal_error"})
        job.inference_time = outcome.inference_time
        if outcome.error is not None:
            job.fail(outcome.error_status, outcome.error_type or "internal_error", outcome.error, outcome.error_body)
            job.log(f"Request failed: {outcome.error}", "ERROR")
            log.info("failed %s (not billed): %s", job.request_id, outcome.error)
        else:
            urls = []
            for data, content_type, name in outcome.files:
                path = f"/_media/{job.request_id}/{name}"
                self.media.put(path, data, content_type)
                urls.append(f"https://{job.host}{path}")
            job.result = _with_urls(outcome.result, outcome.slots, urls)
            self.ledger.bill(job, outcome.cost_usd, outcome.priced)
            job.log("Request completed")
            log.info("completed %s %s $%.4f%s", job.request_id, job.endpoint, outcome.cost_usd,
                     " (nsfw)" if job.nsfw else "")
        job.state = COMPLETED
        if job.webhook:
            task = asyncio.create_task(self._post_webhook(job))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _post_webhook(self, job: Job) -> None:
        import httpx

        if job.error is None:
            payload = {"request_id": job.request_id, "gateway_request_id": job.request_id, "status": "OK",
                       "payload": job.result}
        else:
            payload = {"request_id": job.request_id, "gateway_request_id": job.request_id, "status": "ERROR",
                       "error": job.error, "payload": job.error_body}
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                await client.post(job.webhook, json=payload)
        except httpx.HTTPError as exc:
            log.warning("webhook %s for %s failed: %s", short(job.webhook), job.request_id, exc)

    # --- uploads (fal's CDN) ----------------------------------------------------------
    def _cdn_unauthorized(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("Authorization", "")
        if token == f"Bearer {self.cdn_secret}":
            return None
        return _json({"detail": "Invalid or expired CDN token"}, 401)

    async def cdn_token(self, request: web.Request) -> web.Response:
        """``POST rest.fal.ai/storage/auth/token?storage_type=fal-cdn-v3`` (needs the fal key)."""
        if (denied := self._unauthorized(request)) is not None:
            return denied
        self.uploads.tokens += 1
        expires = datetime.now(timezone.utc) + timedelta(seconds=self.cdn_token_seconds)
        return _json({"token": self.cdn_secret, "token_type": "Bearer", "base_url": f"https://{request.host}",
                      "expires_at": expires.isoformat()})

    def _file_url(self, request: web.Request, name: str) -> tuple[str, str]:
        fid = uuid.uuid4().hex
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name or "upload.bin")[:100]
        path = f"/_files/{fid}/{safe}"
        return path, f"https://{request.host}{path}"

    async def upload_file(self, request: web.Request) -> web.Response:
        """``POST v3.fal.media/files/upload``: one body, answered with its access_url."""
        if (denied := self._cdn_unauthorized(request)) is not None:
            return denied
        data = await request.read()
        ctype = request.headers.get("Content-Type", "application/octet-stream")
        path, url = self._file_url(request, request.headers.get("X-Fal-File-Name", "upload.bin"))
        self.media.put(path, data, ctype)
        self.uploads.record(url, data, multipart=False)
        return _json({"access_url": url, "content_type": ctype, "file_name": path.rsplit("/", 1)[-1], "file_size": len(data)})

    async def multipart_create(self, request: web.Request) -> web.Response:
        if (denied := self._cdn_unauthorized(request)) is not None:
            return denied
        path, url = self._file_url(request, request.headers.get("X-Fal-File-Name", "upload.bin"))
        upload_id = uuid.uuid4().hex
        self.uploads.open[upload_id] = {"path": path, "url": url, "parts": {},
                                        "content_type": request.headers.get("Content-Type", "application/octet-stream")}
        return _json({"access_url": url, "uploadId": upload_id})

    async def multipart_part(self, request: web.Request) -> web.Response:
        if (denied := self._cdn_unauthorized(request)) is not None:
            return denied
        upload = self.uploads.open.get(request.match_info["uid"])
        if upload is None:
            return _json({"detail": "Unknown upload"}, 404)
        data = await request.read()
        number = int(request.match_info["part"])
        upload["parts"][number] = data
        self.uploads.parts += 1
        return web.Response(status=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    async def multipart_complete(self, request: web.Request) -> web.Response:
        if (denied := self._cdn_unauthorized(request)) is not None:
            return denied
        upload = self.uploads.open.pop(request.match_info["uid"], None)
        if upload is None:
            return _json({"detail": "Unknown upload"}, 404)
        body = await request.json()
        numbers = [int(p["partNumber"]) for p in body.get("parts", [])]
        if sorted(numbers) != sorted(upload["parts"]):
            return _json({"detail": "Parts do not match the uploaded parts"}, 400)
        data = b"".join(upload["parts"][n] for n in sorted(numbers))
        self.media.put(upload["path"], data, upload["content_type"])
        self.uploads.record(upload["url"], data, multipart=True)
        return _json({"access_url": upload["url"]})

    # --- media and control ---------------------------------------------------------
    async def get_media(self, request: web.Request) -> web.StreamResponse:
        found = self.media.get(request.path)
        if found is None:
            return _json({"detail": "Not found"}, 404)
        if (fault := await self._fault(request, "media")) is not None:
            return fault
        data, content_type = found
        return web.Response(body=data, content_type=content_type)

    def ledger_json(self) -> dict[str, Any]:
        return {
            "submitted": self.ledger.submitted,
            "submit_attempts": self.ledger.submit_attempts,
            "status_gets": self.ledger.status_gets,
            "status_streams": self.ledger.status_streams,
            "cancelled": self.ledger.cancelled,
            "billed": list(self.ledger.billed),
            "rejected": list(self.ledger.rejected),
            "accepted": list(self.ledger.accepted),
            "reject_at": self.reject_at,
            "total_usd": self.ledger.total_usd(),
            "max_in_progress": self.queue.max_in_progress,
            "in_progress": self.queue.in_progress,
            "in_queue": len(self.queue.waiting),
            "concurrency": self.queue.concurrency,
            "faults": dict(self.dice.counts),
            "uploads": self.uploads.summary(),
        }

    async def get_ledger(self, request: web.Request) -> web.Response:
        return _json(self.ledger_json())

    async def reset(self, request: web.Request) -> web.Response:
        """Clear the ledger; a JSON body ``{"faults": "...", "seed": N}`` also sets new faults."""
        options: dict[str, Any] = {}
        if request.can_read_body:
            try:
                options = await request.json()
            except json.JSONDecodeError:
                return _json({"detail": "reset body must be JSON"}, 422)
        try:
            faults = parse_faults(options["faults"]) if "faults" in options else self.dice.faults
        except InvalidInput as exc:
            return _json({"detail": exc.lines()}, 422)
        self.seed = options.get("seed", self.seed)
        self.dice = FaultDice(faults, self.seed)
        self.ledger = Ledger()
        self.uploads = Uploads()
        self.queue.clear()
        return _json(self.ledger_json())


@web.middleware
async def _request_id_header(request: web.Request, handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("x-fal-request-id", str(uuid.uuid4()))
    return response


def _with_urls(result: dict[str, Any], slots: list[tuple[str, ...]], urls: list[str]) -> dict[str, Any]:
    from ..jobs import JobOutput

    return JobOutput(result, [], slots).with_urls(urls)


def _takes_seed(endpoint: str) -> bool:
    """Image endpoints with a seed parameter get one picked when the request has none."""
    from ..catalog import load_catalog

    spec = load_catalog().get(endpoint)
    return spec.output_kind == "image" and "seed" in spec.params


def _unknown_app(endpoint: str) -> str | None:
    """fal's 404 for an id it does not serve: an alias (``fal-ai/flux-2-flash``) is not
    an endpoint on fal, whatever the seeds wrote. None for a catalogued canonical id (or
    its sub-path) and for ids outside the catalog (left to validation)."""
    from ..catalog import load_catalog

    catalog = load_catalog()
    if endpoint in catalog.aliases():
        owner, _, rest = endpoint.partition("/")
        return f"Application '{rest.split('/')[0]}' not found for user '{owner}'"
    return None


@dataclass
class Uploads:
    """Files uploaded through the emulated CDN: what a test counts to prove a file went once."""

    tokens: int = 0
    parts: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    open: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, url: str, data: bytes, *, multipart: bool) -> None:
        self.files.append({"url": url, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "multipart": multipart})

    def summary(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "parts": self.parts, "files": list(self.files),
                "bytes": sum(f["bytes"] for f in self.files)}
