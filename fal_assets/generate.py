"""Validated, journaled, budgeted generation on any backend.

One call follows a request from arguments to verified files in the content store:
validate -> estimate -> journal (before any money moves) -> budget -> submit ->
follow the queue -> download every output at once -> verify -> store -> journal.
A completed key is a cache hit ($0, no network); a submitted key resumes by request id.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import hashlib
import io
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from . import journal as jr
from .backends import Backend, MaybeAccepted, RequestGone, TransientError, make_backend
from .backends.base import QueueStatus
from .budget import Budget, BudgetGuard
from .catalog import load_catalog
from .errors import ContentFlagged, GenerationFailed, InvalidInput, Problem
from .media import content_type_for, image_size_of, read_input, suffix_for
from .pricing import CostEstimate, estimate
from .store import ContentStore
from .accepted import ACCEPTED, SENDING, AcceptedLog
from .uploads import RESULT_URL_LIFETIME_S, UPLOAD_LIFETIME_S, UploadCache
from .validation import validate

log = logging.getLogger("fal_assets.generate")
#: Backoff base (seconds) between attempts to journal a request id fal accepted.
RECORD_RETRY_BASE = 0.2
#: How a journal row that fal answered with 422 at result time starts its error line.
REJECTED_BY_FAL = "fal rejected (422 at result time) request"


@dataclass
class Request:
    """A request as the caller means it.

    ``files`` maps an argument path (``image_data_url``, ``image_urls.0``,
    ``loras.0.path``) to a local file that is uploaded when the request is sent; the
    journal key uses the file's content hash there, so a re-upload is no new request.
    ``labels`` (character, pose, asset, ...) are what the cost report groups by.
    """

    endpoint: str
    arguments: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Generation:
    """What a request produced, and what it cost."""

    key: str
    endpoint: str
    arguments: dict[str, Any]
    backend: str
    request_id: str | None
    cache_hit: bool
    cost_usd: float
    cost_kind: str
    estimate: dict[str, Any]
    files: list[dict[str, Any]]
    result: dict[str, Any]
    timings: dict[str, Any]

    @property
    def seed(self) -> int | None:
        return self.arguments.get("seed", self.result.get("seed"))

    @property
    def paths(self) -> list[Path]:
        return [Path(f["path"]) for f in self.files]

    def summary(self) -> dict[str, Any]:
        """The JSON the CLI prints and the metadata Dagster records (no secrets)."""
        return {
            "endpoint": self.endpoint,
            "request_id": self.request_id,
            "seed": self.seed,
            "backend": self.backend,
            "cache_hit": self.cache_hit,
            "cost_usd": round(self.cost_usd, 6),
            "cost_kind": self.cost_kind,
            "estimated_usd": self.estimate.get("cost_usd"),
            "files": [f["path"] for f in self.files],
            "key": self.key,
        }


@dataclass
class Settings:
    """How generation behaves; nothing secret lives here."""

    backend: str = "local"
    journal_url: str | None = field(default=None, repr=False)  # may hold a password
    store_root: Path = Path(".fal-assets/store")  # the content store, or this machine's cache of store_url
    store_url: str | None = None  # fsspec URL of the store (s3://bucket/prefix); None: store_root itself
    concurrency: int = 2
    budget: Budget = field(default_factory=Budget)
    poll_interval: float = 0.1
    call_timeout: float = 30.0
    wait_timeout: float = 1800.0
    retries: int = 8
    retry_base: float = 0.2
    retry_cap: float = 5.0
    download_timeout: float = 300.0  # a whole file (LoRA weights are large); call_timeout is per call
    resubmit_in_doubt: bool = True  # send again a submit whose answer was lost (what fal_client does)
    resend_in_doubt_below_usd: float = 1.0  # at or above this (and training, always): never resent on doubt
    training_wait_timeout: float = 7200.0  # a 1000-step FLUX.2 training takes ~21 min plus queue
    run_id: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= 40:
            raise InvalidInput([_problem("concurrency", f"{self.concurrency} is outside 1..40 (fal's account limits)")])
        self.store_root = Path(self.store_root)

    def content_store(self) -> ContentStore:
        """Where generated files are kept: ``store_root``, or ``store_url`` read through it."""
        from .remote_store import open_store

        return open_store(self.store_url, self.store_root)

    def accepted_log(self) -> AcceptedLog:
        """The fsync'd record of sends and accepts, beside the store (one per workdir)."""
        return AcceptedLog(self.store_root.parent / "accepted.log")

    def journal(self) -> jr.Journal:
        if self.journal_url:
            return jr.Journal(self.journal_url)
        return jr.Journal.at(self.store_root.parent / "journal.db")


def _url(stored) -> str:
    """Where a stored file lives, as a URL: the store's object URL, or the local file's."""
    return stored.url or Path(stored.path).absolute().as_uri()


def _problem(fieldname: str, message: str):
    from .errors import Problem

    return Problem("settings", fieldname, message)


# -- pure helpers -------------------------------------------------------------------


#: The largest list index a file argument path may name (no endpoint takes more).
MAX_PATH_INDEX = 63
_PATH_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


def check_arg_path(path: str, where: str = "files") -> list[str]:
    """The parts of an argument path (``image_urls.0``, ``loras.1.path``), or one
    ``InvalidInput`` line: names and list indices up to ``MAX_PATH_INDEX``."""
    parts = path.split(".")
    if not path or len(parts) > 4 or not all(_PATH_PART.fullmatch(p) for p in parts) or parts[0].isdigit():
        raise InvalidInput([Problem(where, path, "is not an argument path; expected NAME, NAME.INDEX or NAME.INDEX.NAME (e.g. image_urls.0)")])
    for part in parts:
        if part.isdigit() and int(part) > MAX_PATH_INDEX:
            raise InvalidInput([Problem(where, path, f"list index {int(part)} is too large; allowed: 0 to {MAX_PATH_INDEX}")])
    return parts


def set_path(arguments: dict[str, Any], path: str, value: Any) -> None:
    """Set ``image_urls.0`` / ``loras.1.path`` / ``image_data_url`` inside arguments,
    creating the lists and objects on the way."""
    parts = check_arg_path(path)
    target: Any = arguments
    for part, nxt in zip(parts, parts[1:]):
        empty: Any = [] if nxt.isdigit() else {}
        if isinstance(target, list):
            index = int(part)
            target.extend(None for _ in range(index + 1 - len(target)))
            if target[index] is None:
                target[index] = empty
            target = target[index]
        else:
            target = target.setdefault(part, empty)
    if isinstance(target, list):
        index = int(parts[-1])
        target.extend(None for _ in range(index + 1 - len(target)))
        target[index] = value
    else:
        target[parts[-1]] = value


def derived_seed(endpoint: str, arguments: dict[str, Any]) -> int:
    """The seed pinned for a request that gave none: stable, so reruns are cache hits."""
    text = json.dumps({"endpoint": endpoint, "arguments": arguments}, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def output_slots(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every ``{"url": ...}`` file object in a result, with its path (``images.0``)."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("url"), str):
                found.append((path, value))
                return
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}" if path else str(index))

    walk(result, "")
    return found


def without_urls(result: dict[str, Any]) -> dict[str, Any]:
    """A result to keep: fal's media URLs are temporary, the stored files are not."""
    kept = copy.deepcopy(result)
    for _, item in output_slots(kept):
        if not item["url"].startswith("data:"):
            item["url_expired"] = item.pop("url")
        else:
            item.pop("url")
    return kept


def verify_file(data: bytes, content_type: str, declared: dict[str, Any], where: str) -> tuple[int, int] | None:
    """Check a download decodes as its content type and has the declared size."""
    if not data:
        raise TransientError(f"{where}: empty download")
    if content_type.startswith("image/"):
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # the whole file decodes, not only its header
                width, height = image.size
        except Exception as exc:
            raise TransientError(f"{where}: does not decode as {content_type}: {exc}") from exc
        if declared.get("width") and (width, height) != (declared["width"], declared.get("height")):
            raise GenerationFailed(
                f"{where}: image is {width}x{height}, the result said {declared['width']}x{declared.get('height')}"
            )
        return width, height
    if declared.get("file_size") and len(data) != int(declared["file_size"]):
        raise TransientError(f"{where}: {len(data)} bytes, the result said {declared['file_size']}")
    return None


def canonical_request(request: Request) -> Request:
    """The request with its endpoint as fal knows it (``fal-ai/flux-2-flash`` ->
    ``fal-ai/flux-2/flash``); fal answers an alias with 404."""
    canonical = load_catalog().canonical(request.endpoint)
    if canonical == request.endpoint:
        return request
    return dataclasses.replace(request, endpoint=canonical)


class ClaimLost(GenerationFailed):
    """Another process took over this request's claim before it was sent."""


def run_spend(journal: jr.Journal, run_id: str) -> float:
    """Dollars a run has spent or holds in flight (its earlier steps count toward its cap)."""
    total = 0.0
    for entry in journal.entries(run_id=run_id):
        if entry.state in (jr.State.CLAIMED, jr.State.SUBMITTED, jr.State.IN_DOUBT):
            total += entry.estimate_usd
        else:
            total += entry.cost_usd or 0.0
    return total


# -- the generator ------------------------------------------------------------------


class Generator:
    """Runs requests on one backend inside one event loop."""

    def __init__(
        self,
        backend: Backend,
        journal: jr.Journal,
        store: ContentStore,
        settings: Settings,
        on_event: Callable[[str], None] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ):
        self.backend = backend
        self.journal = journal
        self.store = store
        self.settings = settings
        self.on_event = on_event or (lambda message: log.info(message))
        # one request's routine progress (submitted, queue position, fal's own log lines):
        # many per run, so a caller may send them somewhere cheaper than ``on_event``
        self.on_progress = on_progress or self.on_event
        self._limit = asyncio.Semaphore(settings.concurrency)
        self.guard = BudgetGuard(settings.budget, journal, backend.label if backend.billed else None)
        if settings.run_id and backend.billed:
            self.guard.run_spent = run_spend(journal, settings.run_id)
        self.in_flight = 0
        self.max_in_flight = 0
        self.uploads = UploadCache(journal, backend.label) if backend.billed else None
        self.accepted = settings.accepted_log() if backend.billed else None
        self._upload_locks: dict[str, asyncio.Lock] = {}

    def key_for(self, endpoint: str, arguments: dict[str, Any]) -> str:
        """The journal key: the plain request hash on fal.ai; other backends' keys carry
        their name (and the local renderer's version), so they never answer for fal."""
        key = jr.request_key(endpoint, arguments)
        if self.backend.label == "fal":
            return key
        return f"{getattr(self.backend, 'key_prefix', self.backend.label)}:{key}"

    def prepare(self, request: Request) -> tuple[dict[str, Any], CostEstimate, str]:
        """Validated arguments with a pinned seed and file hashes; the estimate; the key."""
        request = canonical_request(request)
        arguments = copy.deepcopy(request.arguments)
        input_sizes = []
        for path, local in sorted(request.files.items()):
            check_arg_path(path)
            data = read_input(path, local)
            set_path(arguments, path, f"sha256:{hashlib.sha256(data).hexdigest()}")
            if path.startswith("image_url"):
                input_sizes.append(image_size_of(data))
        spec = load_catalog().get(request.endpoint)
        if "seed" in spec.params and arguments.get("seed") is None:
            arguments["seed"] = derived_seed(request.endpoint, arguments)
        normalised = validate(request.endpoint, arguments)
        cost = estimate(request.endpoint, normalised, input_sizes=input_sizes or None)
        return normalised, cost, self.key_for(request.endpoint, normalised)

    async def _retry(self, what: str, call: Callable[[], Any], *, timeout: float | None = None, send: bool = False) -> Any:
        """Retry ``call`` on transient failures with backoff and jitter. With ``send``, a
        timeout or a lost answer is never retried here: fal may already hold the job."""
        settings = self.settings
        last: Exception | None = None
        for attempt in range(settings.retries):
            try:
                return await asyncio.wait_for(call(), timeout=timeout or settings.call_timeout)
            except MaybeAccepted:
                raise
            except (TransientError, asyncio.TimeoutError) as exc:
                if send and isinstance(exc, asyncio.TimeoutError):
                    raise MaybeAccepted(f"{what}: no answer within {timeout or settings.call_timeout:.0f}s") from exc
                last = exc
                delay = min(settings.retry_cap, settings.retry_base * 2**attempt) * random.uniform(0.5, 1.5)
                if attempt + 1 < settings.retries:
                    self.on_event(f"{what}: {type(exc).__name__}: {exc}; retry {attempt + 1}/{settings.retries - 1} in {delay:.2f}s")
                    await asyncio.sleep(delay)
        raise GenerationFailed(f"{what}: gave up after {settings.retries} tries: {type(last).__name__}: {last}")

    async def generate(self, request: Request) -> Generation:
        request = canonical_request(request)  # fal knows only canonical ids: submit, journal, price by them
        arguments, cost, key = self.prepare(request)
        endpoint = request.endpoint
        known = await self._journal("get", key)
        if known is not None and known.state == jr.State.COMPLETED:
            return self._from_entry(known, cost, cache_hit=True)  # no slot, no network
        if known is not None and known.state == jr.State.FAILED and (known.error or "").startswith(REJECTED_BY_FAL):
            raise GenerationFailed(f"{endpoint}: not sent: {known.error}; the same arguments would be rejected again")
        started, resent = time.monotonic(), 0
        while True:
            # Claim only once a slot is free: a claim never waits in our own queue, so its
            # lease (and any other process's view of it) covers only the send itself.
            async with self._limit:
                decision = await self._journal(
                    "begin", key, endpoint, arguments, backend=self.backend.label, estimate_usd=cost.cost_usd, labels=request.labels
                )
                action = decision.action
                if action == jr.Action.CACHED:
                    return self._from_entry(decision.entry, cost, cache_hit=True)
                if action == jr.Action.QUARANTINED:
                    raise ContentFlagged(f"{endpoint}: {key[:12]} was flagged before ({decision.entry.error}); its files are quarantined")
                if action != jr.Action.WAIT:
                    try:
                        request_id, waited = await self._run(request, arguments, cost, key, decision)
                        break
                    except MaybeAccepted as lost:
                        if self._never_resend(request, cost):
                            raise GenerationFailed(self._doubt_line(endpoint, key, cost, str(lost))) from lost
                        if not self.settings.resubmit_in_doubt or resent >= 1:
                            raise GenerationFailed(
                                f"{endpoint}: {lost}; fal may hold a paid job for it (it has no idempotency key). "
                                "It is journaled as in doubt; a rerun sends it again"
                            ) from lost
                        resent += 1
                        self.on_event(f"warning: {endpoint}: {lost}; sending it again (fal may bill both)")
                        continue
                    except RequestGone as gone:
                        if not self.backend.billed and decision.action == jr.Action.RESUME and self._held_elsewhere(decision.entry):
                            pass  # another live process renders it for free: wait for its result
                        else:
                            await self._journal("mark_failed", key, f"the backend no longer holds the request: {gone}")
                            if self.backend.billed:
                                raise GenerationFailed(
                                    f"{endpoint}: the request is gone ({gone}; fal keeps results about an hour); "
                                    "it is marked failed, and a rerun pays for it again"
                                ) from gone
                            continue  # a free backend simply renders it again
            # WAIT: another live process holds the claim; wait outside the slot
            if time.monotonic() - started > self.settings.wait_timeout:
                raise GenerationFailed(f"{endpoint}: another process has held {key[:12]} for too long")
            await asyncio.sleep(self.settings.poll_interval)
        try:
            return await self._collect(request, cost, key, request_id, waited)
        except RequestGone as gone:
            await self._journal("mark_failed", key, f"the backend no longer holds request {request_id}: {gone}")
            raise GenerationFailed(f"{endpoint}: the result of {request_id} is gone: {gone}") from gone

    def _held_elsewhere(self, entry: jr.Entry) -> bool:
        """A request another live process submitted (the local backend cannot follow it)."""
        return entry.owner != self.journal.owner and jr.owner_alive(entry.owner)

    async def _run(self, request: Request, arguments, cost: CostEstimate, key: str, decision) -> tuple[str, float]:
        """Inside a slot: submit (or resume) and wait until COMPLETED, which is what fal
        counts against the account's concurrency."""
        endpoint = request.endpoint
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if decision.action == jr.Action.SUBMIT:
                adopted = None
                if decision.previous_state == jr.State.IN_DOUBT:
                    adopted = await self._settle_doubt(request, cost, key, decision)
                request_id = adopted or await self._submit(request, arguments, cost, key)
            else:
                request_id = decision.request_id
                self.on_event(f"{endpoint}: resuming request {request_id} (no second submit)")
            return request_id, await self._await_done(endpoint, key, request_id)
        finally:
            self.in_flight -= 1

    def _never_resend(self, request: Request, cost: CostEstimate) -> bool:
        """Training, and anything estimated at or above the threshold, is never resent on doubt."""
        spec = load_catalog().get(request.endpoint)
        return spec.purpose == "training" or cost.cost_usd >= self.settings.resend_in_doubt_below_usd

    def _doubt_line(self, endpoint: str, key: str, cost: CostEstimate, why: str) -> str:
        return (f"{endpoint}: {key[:12]} was sent but fal's answer never reached us ({why}); fal may hold a paid job "
                f"(estimated ${cost.cost_usd:.2f}), so it is not sent again on doubt. If fal lists it, adopt it: "
                f"fal-assets journal adopt {key} REQUEST_ID; to send it again on purpose: fal-assets journal resend {key}")

    async def _settle_doubt(self, request: Request, cost: CostEstimate, key: str, decision) -> str | None:
        """A claim whose process died (or lost fal's answer) before the journal had the request
        id. The accepted log decides: an accepted id is adopted (no second submit); a send
        with no answer is in doubt (resent only when cheap); no send at all is safe to send."""
        endpoint = request.endpoint
        mark = self.accepted.last(key) if self.accepted is not None else None
        if mark is not None and mark.event == ACCEPTED and mark.request_id:
            await self._journal("mark_submitted", key, mark.request_id)
            if self.guard.backend is not None:
                self.guard.run_spent += cost.cost_usd  # settled against the bill when it completes
            self.on_event(f"{endpoint}: adopting request {mark.request_id}: fal accepted it before the journal "
                          "recorded it (no second submit)")
            return mark.request_id
        if mark is not None and mark.event == SENDING:
            if self._never_resend(request, cost):
                line = self._doubt_line(endpoint, key, cost, decision.entry.error or "its process died mid-send")
                await self._journal("mark_in_doubt", key, line)
                raise GenerationFailed(line)
            self.on_event(f"warning: {endpoint}: {key[:12]} was sent before but fal's answer never reached the journal "
                          f"({decision.entry.error or 'its process died'}); sending it again (estimated "
                          f"${cost.cost_usd:.4f}, below the ${self.settings.resend_in_doubt_below_usd:.2f} threshold)")
        return None

    async def _journal(self, method: str, *args, **kwargs):
        """Journal writes run in a worker thread: a commit must not stall the event loop."""
        return await asyncio.to_thread(getattr(self.journal, method), *args, **kwargs)

    async def _submit(self, request: Request, arguments: dict[str, Any], cost: CostEstimate, key: str) -> str:
        endpoint = request.endpoint
        what = f"{endpoint} ({', '.join(f'{k}={v}' for k, v in request.labels.items())})"
        try:
            self.guard.claim(cost.cost_usd, what=what)
        except BaseException as exc:
            await self._journal("mark_failed", key, f"not sent: {exc}")
            raise
        try:
            request_id = await self._holding_claim(key, self._send(request, arguments, key))
        except MaybeAccepted as exc:  # it may be billed: the budget keeps counting it
            await self._journal("mark_in_doubt", key, str(exc))
            raise
        except ClaimLost:
            self.guard.release(cost.cost_usd)
            raise  # the row is another process's now: leave it alone
        except BaseException as exc:
            self.guard.release(cost.cost_usd)
            await self._journal("mark_failed", key, f"not sent: {type(exc).__name__}: {exc}")
            raise
        self.on_progress(f"{endpoint}: submitted {request_id} (estimated ${cost.cost_usd:.4f})")  # logged before anything can fail
        await self._record_submitted(endpoint, key, request_id)
        return request_id

    async def _send(self, request: Request, arguments: dict[str, Any], key: str) -> str:
        """Upload the files, make sure the claim is still ours, then submit once."""
        endpoint = request.endpoint
        sendable = copy.deepcopy(arguments)
        for path, local in sorted(request.files.items()):
            data = read_input(path, local)
            set_path(sendable, path, await self._uploaded_url(path, Path(local), data))
        if not await self._journal("renew", key):
            raise ClaimLost(f"{endpoint}: {key[:12]}: another process took over this claim; not sent")

        async def submit_once() -> str:
            request_id = await self.backend.submit(endpoint, sendable)
            if self.accepted is not None:  # durable before any log line, event or journal write of this request
                await asyncio.to_thread(self.accepted.accepted, key, endpoint, request_id)
            return request_id

        if self.accepted is not None:  # from here on fal may hold a paid job
            await asyncio.to_thread(self.accepted.sending, key, endpoint)
        return await self._retry(f"submit {endpoint}", submit_once, send=True)

    async def _uploaded_url(self, path: str, local: Path, data: bytes) -> str:
        """The URL of ``data`` on the backend: uploaded once per content hash and reused
        (across poses, runs and processes) while fal still holds it; a URL fal returned
        for the same bytes (the trainer's LoRA) is preferred while it is valid."""

        def send():
            return self.backend.upload(data, content_type_for(local), local.name)

        to_cdn = getattr(self.backend, "uploads_to_cdn", None)
        if self.uploads is None or to_cdn is None or not to_cdn(len(data)):
            return await self._retry(f"upload {path}", send, timeout=self.settings.download_timeout)
        digest = hashlib.sha256(data).hexdigest()
        async with self._upload_locks.setdefault(digest, asyncio.Lock()):  # one upload per file in this process
            known = await asyncio.to_thread(self.uploads.get, digest)
            if known is not None:
                self.on_event(f"upload {path}: {local.name} already on fal ({known.origin} URL, valid until "
                              f"{known.expires_at:%Y-%m-%d %H:%M} UTC); not uploaded again")
                return known.url
            url = await self._retry(f"upload {path}", send, timeout=self.settings.download_timeout)
            await asyncio.to_thread(self.uploads.put, digest, url, len(data), lifetime_s=UPLOAD_LIFETIME_S)
            self.on_event(f"upload {path}: {local.name} ({len(data)} bytes) uploaded once as {url}")
            return url

    async def _remember_result_urls(self, files: list[dict[str, Any]]) -> None:
        """A file fal returned (the trainer's LoRA) is on fal already: keep its URL, so a
        request that sends the same bytes uses it instead of uploading them again."""
        if self.uploads is None:
            return
        for item in files:
            url = item.pop("source_url", None)
            if url and url.startswith(("https://", "http://")):
                await asyncio.to_thread(self.uploads.put, hashlib.sha256(item["data"]).hexdigest(), url, len(item["data"]),
                                        lifetime_s=RESULT_URL_LIFETIME_S, origin="result")

    async def _record_submitted(self, endpoint: str, key: str, request_id: str) -> None:
        """Journal the request id; if the journal cannot take it, cancel the job rather
        than leave a paid request that a rerun would not know about."""
        for attempt in range(5):
            try:
                await self._journal("mark_submitted", key, request_id)
                return
            except jr.JournalStateError as exc:
                error: Exception = exc
                break  # the claim is gone: retrying cannot help
            except Exception as exc:  # noqa: BLE001 - a database hiccup (locked, connection lost)
                error = exc
                await asyncio.sleep(RECORD_RETRY_BASE * 2**attempt)
        if self.accepted is not None and not isinstance(error, jr.JournalStateError):
            # The id is on disk (accepted log): a rerun adopts it. Cancelling would only help
            # a job still queued, and a running one would be billed with no record of it.
            raise GenerationFailed(
                f"{endpoint}: request {request_id} was accepted but the journal could not record it "
                f"({type(error).__name__}: {str(error)[:120]}); its id is kept in {self.accepted.path} and a rerun "
                "follows it without paying again"
            )
        try:
            await self.backend.cancel(endpoint, request_id)
            fate = "cancelled it (fal does not bill a request cancelled while queued)"
        except Exception as cancel_error:  # noqa: BLE001
            fate = f"could not cancel it ({cancel_error}); it may be billed"
        raise GenerationFailed(f"{endpoint}: request {request_id} was accepted but the journal could not record it ({error}); {fate}")

    async def _holding_claim(self, key: str, call):
        """Await ``call`` while renewing the claim's lease, so a slow submit (fal_client
        retries the POST itself) is not taken for a dead process and sent twice."""

        async def renew():
            while True:
                await asyncio.sleep(self.journal.lease_seconds / 3)
                await self._journal("renew", key)

        renewer = asyncio.ensure_future(renew())
        try:
            return await call
        finally:
            renewer.cancel()

    async def _await_done(self, endpoint: str, key: str, request_id: str) -> float:
        """Follow the request until COMPLETED: fal's status stream where the backend has
        one (no polling), else (or once a stream breaks) a status GET every poll interval.
        Returns the seconds waited."""
        settings = self.settings
        limit = settings.training_wait_timeout if load_catalog().get(endpoint).purpose == "training" else settings.wait_timeout
        started = time.monotonic()
        seen = {"position": None, "logged": 0}

        def note(status: QueueStatus) -> None:
            for line in (status.logs or [])[seen["logged"]:]:  # fal sends the whole log each time
                self.on_progress(f"{endpoint}: {request_id}: {line.get('message', line) if isinstance(line, dict) else line}")
            seen["logged"] = max(seen["logged"], len(status.logs or []))
            if not status.done and status.queue_position is not None and status.queue_position != seen["position"]:
                seen["position"] = status.queue_position
                self.on_progress(f"{endpoint}: {request_id} in queue at position {status.queue_position}")

        def too_long() -> GenerationFailed:
            return GenerationFailed(
                f"{endpoint}: {request_id} not done after {limit:.0f}s; it stays journaled "
                "as submitted and a rerun resumes it without paying again (while fal holds it)"
            )

        status = None
        if getattr(self.backend, "watch", None) is not None:
            status = await self._watch(endpoint, request_id, note, max(0.0, limit - (time.monotonic() - started)))
            if status is None and time.monotonic() - started > limit:
                raise too_long()
        while status is None or not status.done:
            status = await self._retry(f"status {request_id}", lambda: self.backend.status(endpoint, request_id))
            note(status)
            if status.done:
                break
            if time.monotonic() - started > limit:
                raise too_long()
            await asyncio.sleep(settings.poll_interval)
        if status.error:
            await self._journal("mark_failed", key, f"the {self.backend.label} backend reported an error: {status.error}")
            raise GenerationFailed(f"{endpoint}: {request_id} failed on the {self.backend.label} backend: {status.error}")
        return time.monotonic() - started

    async def _watch(self, endpoint: str, request_id: str, note, limit: float) -> QueueStatus | None:
        """The COMPLETED status from the backend's status stream, or None when the stream
        broke or ``limit`` ran out (the caller polls from there)."""

        async def follow() -> QueueStatus | None:
            async for status in self.backend.watch(endpoint, request_id):
                note(status)
                if status.done:
                    return status
            return None

        try:
            return await asyncio.wait_for(follow(), limit)
        except (TransientError, asyncio.TimeoutError) as broke:
            if isinstance(broke, TransientError):
                self.on_progress(f"{endpoint}: {request_id}: {broke}; polling its status instead")
            return None

    async def _collect(self, request: Request, cost: CostEstimate, key: str, request_id: str, waited: float) -> Generation:
        """Fetch the result, download every file at once, verify, store, journal."""
        endpoint = request.endpoint
        started = time.monotonic()
        try:
            result = await self._retry(f"result {request_id}", lambda: self.backend.result(endpoint, request_id))
        except InvalidInput as rejected:
            line = await self._finish_rejected(endpoint, key, request_id, cost, rejected)
            raise GenerationFailed(line) from rejected
        files = await self._download_all(result, request_id)
        await self._remember_result_urls(files)
        flagged = any(result.get("has_nsfw_concepts") or [])
        billed = cost.cost_usd if self.backend.billed else 0.0
        kind = "billed" if self.backend.billed else "estimated"
        timings = {"wait_s": round(waited, 3), "collect_s": round(time.monotonic() - started, 3), **(result.get("timings") or {})}
        if flagged:
            stored = []
            for item in files:
                kept = await asyncio.to_thread(self.store.quarantine, item.pop("data"), item["suffix"], "nsfw")
                stored.append(dict(item, path=str(kept.path), url=_url(kept)))
            await self._journal("mark_quarantined", key, "has_nsfw_concepts", stored, cost_usd=billed, cost_kind=kind)
            raise ContentFlagged(
                f"{endpoint}: {request_id} was flagged by fal's safety checker (has_nsfw_concepts); "
                f"its {len(stored)} file(s) are quarantined and never used downstream"
            )
        stored = []
        for item in files:
            data = item.pop("data")
            saved = await asyncio.to_thread(functools.partial(self.store.put, data, suffix=item["suffix"]))
            stored.append(dict(item, path=str(saved.path), sha256=saved.sha256, size=saved.size, url=_url(saved)))
        finished = await self._journal("get", key)
        if finished is not None and finished.state == jr.State.COMPLETED:
            return self._from_entry(finished, cost, cache_hit=True)  # another process followed it too and recorded it
        entry = await self._journal(
            "mark_completed", key, files=stored, cost_usd=billed, cost_kind=kind, result=without_urls(result), timings=timings
        )
        self.guard.settle(cost.cost_usd, billed)
        return self._from_entry(entry, cost, cache_hit=False)

    async def _finish_rejected(self, endpoint: str, key: str, request_id: str, cost: CostEstimate, rejected: InvalidInput) -> str:
        """fal ran the request to COMPLETED and answered 422 from the result GET: a finished,
        failed job. Journal it failed with fal's field errors on one line and settle the
        budget; a rerun then submits a corrected request, never this one again by id."""
        fields = "; ".join(rejected.lines())
        # fal may bill a 422 that spent GPU time; its answer does not say, so nothing is recorded as billed.
        await self._journal("mark_failed", key, f"{REJECTED_BY_FAL} {request_id}: {fields}")
        self.guard.settle(cost.cost_usd, 0.0)
        line = (f"{endpoint}: {REJECTED_BY_FAL} {request_id}: {fields}; journaled as failed and never sent again "
                "with these arguments: correct them")
        self.on_event(line)
        return line

    async def _download_all(self, result: dict[str, Any], request_id: str) -> list[dict[str, Any]]:
        """Every output file at once: result URLs are temporary."""

        async def one(slot: str, item: dict[str, Any]) -> dict[str, Any]:
            async def fetch():
                data, content_type = await self.backend.download(item["url"])
                content_type = item.get("content_type") or content_type
                size = verify_file(data, content_type, item, f"{request_id} {slot}")
                return data, content_type, size

            data, content_type, size = await self._retry(f"download {request_id} {slot}", fetch, timeout=self.settings.download_timeout)
            entry = {"slot": slot, "content_type": content_type, "suffix": suffix_for(content_type, item["url"]), "data": data,
                     "source_url": item["url"]}
            if size:
                entry["width"], entry["height"] = size
            return entry

        return list(await asyncio.gather(*(one(slot, item) for slot, item in output_slots(result))))

    def _from_entry(self, entry: jr.Entry, cost: CostEstimate, *, cache_hit: bool) -> Generation:
        files = []
        for item in entry.files or []:
            here = self.store.locate(item)  # the recorded path, this cache, or a download from its URL
            if here is None:
                raise GenerationFailed(
                    f"{entry.endpoint}: the journal has {entry.key[:12]} as done but {item.get('url') or item['path']} "
                    "is missing; restore the store (or mark the entry failed to pay for it again)"
                )
            files.append(dict(item, path=str(here)))
        return Generation(
            key=entry.key,
            endpoint=entry.endpoint,
            arguments=entry.arguments,
            backend=entry.backend,
            request_id=entry.request_id,
            cache_hit=cache_hit,
            cost_usd=0.0 if cache_hit else float(entry.cost_usd or 0.0),
            cost_kind=entry.cost_kind or ("billed" if self.backend.billed else "estimated"),
            estimate=cost.to_dict(),
            files=files,
            result=entry.result or {},
            timings=entry.timings or {},
        )

    async def generate_many(self, requests: Iterable[Request]) -> list[Generation | BaseException]:
        """Fan out; one failure does not stop the others (each result or its error)."""
        return list(await asyncio.gather(*(self.generate(r) for r in requests), return_exceptions=True))


async def _run(requests, settings, key, on_event, backend_options, on_progress=None):
    options = dict(backend_options or {})
    if settings.backend != "local":
        options.setdefault("key", key)
        options.setdefault("request_timeout", settings.call_timeout)
    backend = make_backend(settings.backend, **options)
    journal = settings.journal()
    try:
        generator = Generator(backend, journal, settings.content_store(), settings, on_event, on_progress)
        return await generator.generate_many(requests)
    finally:
        await backend.aclose()
        journal.close()


def generate_all(
    requests: list[Request],
    settings: Settings,
    *,
    key: str | None = None,
    on_event: Callable[[str], None] | None = None,
    backend_options: dict[str, Any] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> list[Generation | BaseException]:
    """Synchronous entry point: run ``requests`` concurrently, each result or its error.
    ``on_event`` hears what matters (warnings, retries, resumed requests, uploads);
    ``on_progress`` each request's routine progress (default: ``on_event``).

    ``key`` is the fal key; without it the fal backend reads ``FAL_KEY`` from the
    environment. It is handed to the client and nowhere else.
    """
    return asyncio.run(_run(requests, settings, key, on_event, backend_options, on_progress))


def generate_one(request: Request, settings: Settings, **kwargs) -> Generation:
    (outcome,) = generate_all([request], settings, **kwargs)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
