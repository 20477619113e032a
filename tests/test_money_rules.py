"""Issue 9's rules on the scripted in-memory backend: training waits long enough, a result
fal no longer holds is one line, an expensive request is never resent on doubt."""

import pytest

from fal_assets import journal as jr
from fal_assets.backends import MaybeAccepted
from fal_assets.errors import GenerationFailed
from fal_assets.generate import Request
from test_generate import PRO, ScriptedBackend, env, run  # noqa: F401 - env is a fixture

TRAIN = Request("fal-ai/flux-2-trainer", {"image_data_url": "https://x/data.zip", "steps": 1000})


def test_training_waits_past_the_image_limit_up_to_its_own(env):
    journal, store, _ = env
    slow = dict(steps_to_done=15, poll_delay=0.01)
    (image,), _, _ = run(ScriptedBackend(**slow), journal, store, [PRO], wait_timeout=0.05, training_wait_timeout=5)
    assert isinstance(image, GenerationFailed) and "not done after" in str(image)
    (trained,), _, _ = run(ScriptedBackend(**slow), journal, store, [TRAIN], wait_timeout=0.05, training_wait_timeout=5)
    assert not isinstance(trained, BaseException), trained
    assert trained.cost_usd == pytest.approx(6.40)


def test_a_timed_out_training_is_resumed_while_fal_holds_it_and_reported_once_gone(env):
    journal, store, _ = env
    first = ScriptedBackend(steps_to_done=1000, poll_delay=0.005)
    (late,), _, _ = run(first, journal, store, [TRAIN], training_wait_timeout=0.05)
    assert isinstance(late, GenerationFailed) and "a rerun resumes it" in str(late)
    held = ScriptedBackend()
    held.known, held.polls = set(first.known), {rid: 5 for rid in first.known}
    (resumed,), _, events = run(held, journal, store, [TRAIN])
    assert not isinstance(resumed, BaseException) and held.submits == [] and any("resuming request" in e for e in events)
    # the same again, but fal has forgotten the request: one line, nothing sent
    other = Request(TRAIN.endpoint, {**TRAIN.arguments, "steps": 999})
    run(ScriptedBackend(steps_to_done=1000, poll_delay=0.005), journal, store, [other], training_wait_timeout=0.05)
    forgot = ScriptedBackend()
    (gone,), _, _ = run(forgot, journal, store, [other])
    assert isinstance(gone, GenerationFailed) and "\n" not in str(gone) and "gone" in str(gone) and forgot.submits == []


def test_an_expensive_request_is_never_resent_on_doubt(env):
    journal, store, tmp_path = env
    lost = ScriptedBackend(faults={"submit": [MaybeAccepted("answer lost")]})
    (doubt,), _, _ = run(lost, journal, store, [TRAIN])
    line = str(doubt)
    assert isinstance(doubt, GenerationFailed) and "\n" not in line
    assert "fal-assets journal adopt" in line and "fal-assets journal resend" in line and lost.submits == []
    again = ScriptedBackend()
    (still,), _, _ = run(again, journal, store, [TRAIN])
    assert isinstance(still, GenerationFailed) and again.submits == []  # a rerun does not pay on doubt either
    (entry,) = journal.entries()
    assert entry.state == jr.State.IN_DOUBT
    journal.adopt(entry.key, "req-from-dashboard")
    adopted = ScriptedBackend()
    adopted.known, adopted.polls = {"req-from-dashboard"}, {"req-from-dashboard": 5}
    (done,), _, _ = run(adopted, journal, store, [TRAIN])
    assert not isinstance(done, BaseException) and done.request_id == "req-from-dashboard" and adopted.submits == []


def test_a_cheap_request_in_doubt_is_resent_once_with_a_warning(env):
    journal, store, _ = env
    backend = ScriptedBackend(faults={"submit": [MaybeAccepted("answer lost")]})
    (gen,), _, events = run(backend, journal, store, [PRO])
    assert not isinstance(gen, BaseException) and len(backend.submits) == 1
    assert any("sending it again" in e for e in events)
