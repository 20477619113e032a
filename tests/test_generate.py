"""The generator's money rules, on a scripted in-memory backend (no network, no renderer)."""

import asyncio
import io
import json

import pytest
from PIL import Image

from fal_assets import journal as jr
from fal_assets.backends import QueueStatus, RequestGone, TransientError
from fal_assets.budget import Budget
from fal_assets.errors import BudgetExceeded, ContentFlagged, GenerationFailed, InvalidInput
from fal_assets.generate import Generator, Request, Settings, derived_seed, output_slots, set_path, without_urls
from fal_assets.store import ContentStore


def png(width=64, height=48, colour=(200, 30, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


class ScriptedBackend:
    """fal's queue in memory, with faults scripted per call kind."""

    label = "fal"
    billed = True

    def __init__(self, faults=None, nsfw=False, steps_to_done=2, size=(64, 48), poll_delay=0.0):
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.nsfw = nsfw
        self.steps_to_done = steps_to_done
        self.size = size
        self.poll_delay = poll_delay
        self.submits = []
        self.polls = {}
        self.known = set()
        self.in_progress = 0
        self.max_in_progress = 0

    def _fault(self, kind):
        queue = self.faults.get(kind)
        if queue:
            fault = queue.pop(0)
            if fault:
                raise fault

    async def submit(self, endpoint, arguments):
        self._fault("submit")
        request_id = f"req-{len(self.submits)}"
        self.submits.append((endpoint, json.loads(json.dumps(arguments))))
        self.known.add(request_id)
        self.polls[request_id] = 0
        return request_id

    async def status(self, endpoint, request_id):
        self._fault("status")
        await asyncio.sleep(self.poll_delay)
        if request_id not in self.known:
            raise RequestGone(request_id)
        self.polls[request_id] += 1
        if self.polls[request_id] >= self.steps_to_done:
            return QueueStatus("COMPLETED")
        return QueueStatus("IN_QUEUE", queue_position=0)

    async def result(self, endpoint, request_id):
        self._fault("result")
        width, height = self.size
        return {
            "images": [{"url": f"mem://{request_id}/0.png", "width": width, "height": height, "content_type": "image/png"}],
            "seed": 7,
            "has_nsfw_concepts": [self.nsfw],
            "timings": {"inference": 0.1},
        }

    async def download(self, url):
        self._fault("download")
        return png(*self.size), "image/png"

    async def upload(self, data, content_type, file_name):
        return f"mem://upload/{file_name}"

    async def cancel(self, endpoint, request_id):
        pass

    async def aclose(self):
        pass


@pytest.fixture
def env(tmp_path):
    journal = jr.Journal.at(tmp_path / "journal.db")
    store = ContentStore(tmp_path / "store")
    yield journal, store, tmp_path
    journal.close()


def run(backend, journal, store, requests, **settings):
    settings = Settings(**{"backend": "fal", "store_root": store.root, "poll_interval": 0.0, "retry_base": 0.0, "call_timeout": 5, **settings})
    events = []

    async def main():
        generator = Generator(backend, journal, store, settings, on_event=events.append)
        return await generator.generate_many(requests), generator

    outcomes, generator = asyncio.run(main())
    return outcomes, generator, events


PRO = Request("fal-ai/flux-2-pro", {"prompt": "a knight in silver armor", "image_size": "square_hd", "seed": 1})


def test_generates_stores_and_journals(env):
    journal, store, _ = env
    backend = ScriptedBackend()
    (gen,), _, _ = run(backend, journal, store, [PRO])
    assert not isinstance(gen, BaseException), gen
    assert gen.cost_usd == pytest.approx(0.03) and gen.cost_kind == "billed"
    assert gen.request_id == "req-0" and gen.seed == 1 and not gen.cache_hit
    assert gen.paths[0].exists() and gen.files[0]["width"] == 64
    entry = journal.get(gen.key)
    assert entry.state == jr.State.COMPLETED and entry.request_id == "req-0"
    assert "url" not in json.dumps(entry.result).replace("url_expired", "")


def test_second_run_is_a_cache_hit_with_no_network(env):
    journal, store, _ = env
    run(ScriptedBackend(), journal, store, [PRO])
    again = ScriptedBackend(faults={"submit": [AssertionError("no submit")], "status": [AssertionError("no poll")]})
    (gen,), _, _ = run(again, journal, store, [PRO])
    assert gen.cache_hit and gen.cost_usd == 0.0 and again.submits == []


def test_resume_by_request_id_never_submits_again(env):
    journal, store, _ = env
    # first process: submitted, then every status call fails until it gives up
    dying = ScriptedBackend(faults={"status": [TransientError("503")] * 10})
    (err,), _, _ = run(dying, journal, store, [PRO], retries=2)
    assert isinstance(err, GenerationFailed)
    assert len(dying.submits) == 1
    (entry,) = journal.entries()
    assert entry.state == jr.State.SUBMITTED
    # second process: the same request id is followed, nothing is submitted
    second = ScriptedBackend()
    second.known.add(entry.request_id)
    second.polls[entry.request_id] = 0
    (gen,), _, events = run(second, journal, store, [PRO])
    assert second.submits == [] and gen.request_id == entry.request_id
    assert any("resuming" in e for e in events)


def test_transient_faults_are_retried(env):
    journal, store, _ = env
    backend = ScriptedBackend(
        faults={
            "submit": [TransientError("429")],
            "status": [TransientError("503"), asyncio.TimeoutError()],
            "result": [TransientError("drop")],
            "download": [TransientError("502")],
        }
    )
    (gen,), _, events = run(backend, journal, store, [PRO])
    assert not isinstance(gen, BaseException), gen
    assert len(backend.submits) == 1
    assert sum("retry" in e for e in events) >= 5


def test_clear_error_after_the_last_try(env):
    journal, store, _ = env
    backend = ScriptedBackend(faults={"download": [TransientError("503")] * 5})
    (err,), _, _ = run(backend, journal, store, [PRO], retries=3)
    assert isinstance(err, GenerationFailed) and "gave up after 3 tries" in str(err)


def test_nsfw_is_quarantined_and_never_used(env):
    journal, store, _ = env
    (err,), _, _ = run(ScriptedBackend(nsfw=True), journal, store, [PRO])
    assert isinstance(err, ContentFlagged) and "quarantined" in str(err)
    (entry,) = journal.entries()
    assert entry.state == jr.State.QUARANTINED
    assert all("quarantine" in f["path"] for f in entry.files)
    again = ScriptedBackend()
    (err2,), _, _ = run(again, journal, store, [PRO])
    assert isinstance(err2, ContentFlagged) and again.submits == []


def test_invalid_request_is_never_sent(env):
    journal, store, _ = env
    backend = ScriptedBackend()
    bad = Request("fal-ai/flux-2-pro", {"prompt": "x", "guidance_scale": 3.5})
    (err,), _, _ = run(backend, journal, store, [bad])
    assert isinstance(err, InvalidInput) and backend.submits == [] and journal.entries() == []


def test_wrong_size_download_is_rejected(env):
    journal, store, _ = env

    class Liar(ScriptedBackend):
        async def download(self, url):
            return png(10, 10), "image/png"

    (err,), _, _ = run(Liar(), journal, store, [PRO])
    assert isinstance(err, GenerationFailed) and "10x10" in str(err)


def test_concurrency_limit_is_kept(env):
    journal, store, _ = env
    backend = ScriptedBackend(steps_to_done=3, poll_delay=0.02)  # requests overlap for real
    requests = [Request("fal-ai/flux-2-pro", {"prompt": f"knight {i}", "seed": i}) for i in range(9)]
    outcomes, generator, _ = run(backend, journal, store, requests, concurrency=3)
    assert all(not isinstance(o, BaseException) for o in outcomes)
    assert generator.max_in_flight == 3 and len(backend.submits) == 9


def test_budget_per_run_refuses_before_sending(env):
    journal, store, _ = env
    backend = ScriptedBackend()
    requests = [Request("fal-ai/flux-2-pro", {"prompt": f"knight {i}", "seed": i}) for i in range(3)]
    outcomes, _, _ = run(backend, journal, store, requests, budget=Budget(per_run_usd=0.07), concurrency=1)
    refused = [o for o in outcomes if isinstance(o, BudgetExceeded)]
    assert len(backend.submits) == 2 and len(refused) == 1
    assert "cap $0.07" in str(refused[0]) and "nothing was sent" in str(refused[0])
    assert sum(1 for e in journal.entries() if e.state == jr.State.COMPLETED) == 2


def test_budget_per_period_counts_earlier_runs(env):
    journal, store, _ = env
    run(ScriptedBackend(), journal, store, [PRO], budget=Budget(per_period_usd=0.05))
    backend = ScriptedBackend()
    other = Request("fal-ai/flux-2-pro", {"prompt": "another knight", "seed": 2})
    (err,), _, _ = run(backend, journal, store, [other], budget=Budget(per_period_usd=0.05))
    assert isinstance(err, BudgetExceeded) and "this month spent $0.0300" in str(err)
    assert backend.submits == []


def test_files_are_uploaded_when_sent_and_hashed_in_the_key(env, tmp_path):
    journal, store, _ = env
    weights = tmp_path / "lora.safetensors"
    weights.write_bytes(b"weights-1")
    request = Request(
        "fal-ai/flux-2/lora",
        {"prompt": "glitch_char running", "loras": [{"path": "", "scale": 1.0}], "image_size": "portrait_4_3"},
        files={"loras.0.path": weights},
    )
    backend = ScriptedBackend(size=(768, 1024))
    (gen,), _, _ = run(backend, journal, store, [request])
    assert not isinstance(gen, BaseException), gen
    sent = backend.submits[0][1]
    assert sent["loras"][0]["path"] == "mem://upload/lora.safetensors"
    assert gen.arguments["loras"][0]["path"].startswith("sha256:")
    assert "seed" in gen.arguments  # a seed was pinned so a rerun is the same request


def test_pure_helpers():
    arguments = {}
    set_path(arguments, "loras.0.path", "x")
    set_path(arguments, "image_urls.1", "b")
    assert arguments == {"loras": [{"path": "x"}], "image_urls": [None, "b"]}
    assert derived_seed("a", {"p": 1}) == derived_seed("a", {"p": 1}) != derived_seed("a", {"p": 2})
    result = {"images": [{"url": "https://x/0.png"}], "diffusers_lora_file": {"url": "https://x/w"}}
    assert [slot for slot, _ in output_slots(result)] == ["images.0", "diffusers_lora_file"]
    assert without_urls(result)["images"][0] == {"url_expired": "https://x/0.png"}


def test_a_lost_submit_answer_is_in_doubt_and_sent_again_once(env):
    from fal_assets.backends import MaybeAccepted

    journal, store, _ = env
    backend = ScriptedBackend(faults={"submit": [MaybeAccepted("read timeout")]})
    (gen,), _, events = run(backend, journal, store, [PRO])
    assert not isinstance(gen, BaseException), gen
    assert len(backend.submits) == 1 and journal.get(gen.key).attempts == 2
    assert any(e.startswith("warning:") and "fal may bill both" in e for e in events)


def test_a_lost_submit_answer_can_stop_and_ask(env):
    from fal_assets.backends import MaybeAccepted

    journal, store, _ = env
    backend = ScriptedBackend(faults={"submit": [MaybeAccepted("read timeout")]})
    (err,), _, _ = run(backend, journal, store, [PRO], resubmit_in_doubt=False)
    assert isinstance(err, GenerationFailed) and "in doubt" in str(err)
    (entry,) = journal.entries()
    assert entry.state == jr.State.IN_DOUBT and backend.submits == []


def test_a_submit_that_never_answers_is_not_retried_blindly(env):
    journal, store, _ = env

    class Slow(ScriptedBackend):
        async def submit(self, endpoint, arguments):
            self.submits.append(arguments)
            await asyncio.sleep(10)

    backend = Slow()
    (err,), _, _ = run(backend, journal, store, [PRO], call_timeout=0.2, resubmit_in_doubt=False)
    assert isinstance(err, GenerationFailed) and "no answer within" in str(err)
    assert len(backend.submits) == 1 and journal.entries()[0].state == jr.State.IN_DOUBT


def test_a_claim_taken_over_during_upload_is_not_sent(env, tmp_path):
    from datetime import datetime, timedelta, timezone

    journal, store, _ = env
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"w")
    request = Request("fal-ai/flux-2/lora", {"prompt": "x_char", "loras": [{"path": "", "scale": 1.0}], "seed": 3},
                      files={"loras.0.path": weights})
    later = jr.Journal(journal.url, clock=lambda: datetime.now(timezone.utc) + timedelta(hours=1))

    class SlowUpload(ScriptedBackend):
        async def upload(self, data, content_type, file_name):
            (entry,) = later.entries()
            later.begin(entry.key, entry.endpoint, entry.arguments, backend="fal", estimate_usd=0.02)  # takes the claim over
            return "mem://upload/w"

    backend = SlowUpload()
    (err,), _, _ = run(backend, journal, store, [request])
    assert "another process took over" in str(err) and backend.submits == []
    assert journal.entries()[0].owner == later.owner


def test_a_second_follower_of_the_same_request_reports_no_cost(env):
    journal, store, _ = env
    run(ScriptedBackend(faults={"status": [TransientError("503")] * 10}), journal, store, [PRO], retries=2)
    (entry,) = journal.entries()
    first, second = ScriptedBackend(), ScriptedBackend()
    for backend in (first, second):
        backend.known.add(entry.request_id)
        backend.polls[entry.request_id] = 0
    (a,), _, _ = run(first, journal, store, [PRO])
    journal_entry = journal.get(a.key)
    # the second follower had fetched the result too, then finds it recorded: a cache hit
    generator = Generator(second, journal, store, Settings(backend="fal", store_root=store.root, poll_interval=0.0))
    collected = asyncio.run(generator._collect(PRO, generator.prepare(PRO)[1], a.key, entry.request_id, 0.0))
    assert a.cost_usd == pytest.approx(0.03) and collected.cache_hit and collected.cost_usd == 0
    assert journal.get(a.key).cost_usd == journal_entry.cost_usd  # counted once


def test_fal_backend_downloads_only_web_and_data_urls(monkeypatch):
    from fal_assets.backends.fal import FalBackend
    from fal_assets.errors import FalAssetsError

    backend = FalBackend(key="test-key-not-real")
    with pytest.raises(FalAssetsError, match="must be https, http or data"):
        asyncio.run(backend.download("file:///proc/self/environ"))
    assert asyncio.run(backend.download("data:text/plain;base64,aGk=")) == (b"hi", "text/plain")


def test_routine_progress_and_what_matters_reach_their_own_listeners(env):
    """Each request's routine progress goes to ``on_progress`` (Dagster sends it to stderr,
    not to one event each); a resumed request still reaches ``on_event``."""
    journal, store, _ = env
    settings = Settings(backend="fal", store_root=store.root, poll_interval=0.0, retry_base=0.0, call_timeout=5)
    events, progress = [], []

    async def main(backend):
        generator = Generator(backend, journal, store, settings, on_event=events.append, on_progress=progress.append)
        return await generator.generate_many([PRO])

    dying = ScriptedBackend(faults={"status": [TransientError("503")] * 10})
    asyncio.run(main(dying))  # submitted, then gives up waiting: a rerun resumes it
    assert any(": submitted " in line for line in progress) and not any(": submitted " in line for line in events)
    (entry,) = journal.entries()
    second = ScriptedBackend()
    second.known.add(entry.request_id)
    second.polls[entry.request_id] = 0
    events.clear()
    asyncio.run(main(second))
    assert any(f"resuming request {entry.request_id}" in line for line in events)
