"""The request journal: decisions, transitions, races between processes, crashes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from fal_assets.journal import (Action, Journal, JournalStateError, State, owner_alive, request_key,
                                requests)

from postgres_server import postgres  # noqa: E402,F401  (the session's PostgreSQL server)

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = "fal-ai/flux-2"


def args(i: int) -> dict:
    return {"prompt": f"hero pose {i}", "seed": i, "image_size": {"width": 1024, "height": 768}}


def key(i: int) -> str:
    return request_key(ENDPOINT, args(i))


def later(seconds: float):
    return lambda: datetime.now(timezone.utc) + timedelta(seconds=seconds)


def begin(journal: Journal, i: int, **kw):
    kw.setdefault("backend", "fal")
    kw.setdefault("estimate_usd", 0.03)
    return journal.begin(key(i), ENDPOINT, args(i), **kw)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "journal" / "requests.sqlite"


# -- request_key ----------------------------------------------------------------------

def test_request_key_is_sha256_of_canonical_json():
    arguments = {"seed": 7, "prompt": "héros — pose", "loras": [{"path": "a", "scale": 1.0}]}
    canonical = ('{"arguments":{"loras":[{"path":"a","scale":1.0}],"prompt":"héros — pose",'
                 '"seed":7},"endpoint":"fal-ai/flux-2/lora"}')
    assert request_key("fal-ai/flux-2/lora", arguments) == \
        hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    reordered = dict(reversed(list(arguments.items())))
    assert request_key("fal-ai/flux-2/lora", reordered) == request_key("fal-ai/flux-2/lora", arguments)
    assert request_key("fal-ai/flux-2/lora", {**arguments, "seed": 8}) != \
        request_key("fal-ai/flux-2/lora", arguments)
    assert request_key("fal-ai/flux-2", arguments) != request_key("fal-ai/flux-2/lora", arguments)


# -- decisions in one process ---------------------------------------------------------

def test_new_key_is_claimed_and_committed_before_submit(db):
    first, other = Journal.at(db), Journal.at(db)
    decision = begin(first, 1, labels={"character": "hero", "pose": "idle"})
    assert decision.action is Action.SUBMIT and decision.previous_state is None
    seen = other.get(key(1))  # another connection sees the claim: it was committed
    assert seen.state is State.CLAIMED and seen.owner == first.owner
    assert seen.attempts == 1 and seen.arguments == args(1) and seen.seed == 1
    assert seen.labels == {"character": "hero", "pose": "idle"}
    assert seen.created_at.tzinfo is not None and seen.created_at.utcoffset() == timedelta(0)
    assert seen.lease_until > datetime.now(timezone.utc) + timedelta(seconds=100)
    assert begin(other, 1).action is Action.WAIT
    assert begin(first, 1).action is Action.WAIT  # its own claim is not submitted twice


def test_submitted_resumes_and_completed_is_cached(db):
    owner, other = Journal.at(db), Journal.at(db)
    begin(owner, 1)
    owner.mark_submitted(key(1), "req-123")
    decision = begin(other, 1)
    assert decision.action is Action.RESUME and decision.request_id == "req-123"
    files = [{"path": "/store/ab/ab.png", "sha256": "ab" * 32, "content_type": "image/png",
              "width": 1024, "height": 768}]
    # A resumer (not the owner) completes the request it followed.
    done = other.mark_completed(key(1), files=files, cost_usd=0.03, cost_kind="billed",
                                result={"seed": 1, "has_nsfw_concepts": [False]},
                                timings={"inference": 1.5})
    assert done.state is State.COMPLETED and done.files == files and done.cost_usd == 0.03
    again = owner.mark_completed(key(1), files=files, cost_usd=0.03, cost_kind="billed")
    assert again.cost_usd == 0.03  # completing twice does not count the money twice
    cached = begin(Journal.at(db), 1)
    assert cached.action is Action.CACHED and cached.entry.result["seed"] == 1
    assert cached.entry.timings == {"inference": 1.5} and cached.entry.completed_at is not None


def test_local_backend_completes_straight_from_claimed(db):
    journal = Journal.at(db)
    begin(journal, 2, backend="local", estimate_usd=0.0)
    entry = journal.mark_completed(key(2), files=[], cost_usd=0.0, cost_kind="billed")
    assert entry.state is State.COMPLETED and entry.request_id is None


def test_failed_is_submitted_again_and_quarantined_is_not(db):
    journal = Journal.at(db)
    begin(journal, 1)
    journal.mark_submitted(key(1), "req-1")
    failed = journal.mark_failed(key(1), "422: image_size too large", billed_usd=0.01)
    assert failed.state is State.FAILED and failed.cost_usd == 0.01 and failed.cost_kind == "billed"
    retry = begin(Journal.at(db), 1)
    assert retry.action is Action.SUBMIT and retry.previous_state is State.FAILED
    assert retry.entry.attempts == 2 and retry.entry.request_id is None

    begin(journal, 3)
    journal.mark_submitted(key(3), "req-3")
    flagged = journal.mark_quarantined(key(3), "has_nsfw_concepts", [{"path": "q.png"}],
                                       cost_usd=0.03)
    assert flagged.state is State.QUARANTINED and flagged.error == "has_nsfw_concepts"
    assert begin(Journal.at(db), 3).action is Action.QUARANTINED


def test_transitions_refuse_wrong_state_or_owner(db):
    owner, stranger = Journal.at(db), Journal.at(db)
    with pytest.raises(JournalStateError, match="no such request"):
        owner.mark_submitted(key(9), "req")
    begin(owner, 1)
    with pytest.raises(JournalStateError, match="cannot become submitted from claimed"):
        stranger.mark_submitted(key(1), "req-x")
    with pytest.raises(JournalStateError, match="cannot become completed"):
        stranger.mark_completed(key(1), files=[], cost_usd=0.0, cost_kind="billed")
    assert stranger.renew(key(1)) is False and owner.renew(key(1)) is True
    owner.mark_submitted(key(1), "req-1")
    with pytest.raises(JournalStateError, match="from submitted"):
        owner.mark_submitted(key(1), "req-2")  # a second request id would mean paying twice
    with pytest.raises(ValueError, match="cost_kind"):
        owner.mark_completed(key(1), files=[], cost_usd=0.0, cost_kind="guessed")
    owner.mark_completed(key(1), files=[], cost_usd=0.03, cost_kind="estimated")
    with pytest.raises(JournalStateError, match="cannot become failed from completed"):
        owner.mark_failed(key(1), "late error")
    assert owner.get(key(1)).request_id == "req-1"


def test_expired_lease_becomes_in_doubt_and_is_submitted_once(db):
    stuck = Journal.at(db)
    begin(stuck, 1, lease_seconds=60)
    assert begin(Journal.at(db), 1).action is Action.WAIT
    rescuer = Journal.at(db, clock=later(61))
    decision = begin(rescuer, 1)
    assert decision.action is Action.SUBMIT and decision.previous_state is State.IN_DOUBT
    assert decision.entry.owner == rescuer.owner and decision.entry.attempts == 2
    assert begin(Journal.at(db, clock=later(61)), 1).action is Action.WAIT
    # The old owner woke up too late: its request id is refused, loudly.
    with pytest.raises(JournalStateError, match="owner"):
        stuck.mark_submitted(key(1), "req-late")
    assert stuck.renew(key(1)) is False


def test_secrets_never_reach_the_journal(db, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "0123abcd-key-id:fedcba9876543210secret")
    journal = Journal.at(db)
    with pytest.raises(ValueError, match="FAL_KEY"):
        journal.begin("k", ENDPOINT, {"prompt": "x", "auth": "Key fedcba9876543210secret"},
                      backend="fal", estimate_usd=0.0)
    assert journal.get("k") is None
    begin(journal, 1)
    with pytest.raises(ValueError, match="FAL_KEY"):
        journal.mark_failed(key(1), "401 for key 0123abcd-key-id:fedcba9876543210secret")
    assert journal.get(key(1)).state is State.CLAIMED
    raw = db.read_bytes() + (db.parent / (db.name + "-wal")).read_bytes()
    assert b"fedcba9876543210secret" not in raw


def test_reserved_label_names_are_refused(db):
    with pytest.raises(ValueError, match="reserved"):
        begin(Journal.at(db), 1, labels={"state": "x"})


def test_totals_spend_and_records(db):
    now = datetime.now(timezone.utc)
    journal = Journal.at(db)
    for i, (character, pose) in enumerate([("hero", "idle"), ("hero", "run"), ("imp", "idle")]):
        begin(journal, i, estimate_usd=0.05, labels={"character": character, "pose": pose})
    journal.mark_submitted(key(0), "r0")
    journal.mark_completed(key(0), files=[{"path": "a.png"}], cost_usd=0.03, cost_kind="billed")
    journal.mark_completed(key(1), files=[], cost_usd=0.02, cost_kind="estimated")
    begin(journal, 3, backend="local", estimate_usd=0.0)
    journal.mark_completed(key(3), files=[], cost_usd=0.0, cost_kind="billed")

    totals = journal.totals()
    assert totals["billed_usd"] == pytest.approx(0.03)
    assert totals["estimated_usd"] == pytest.approx(0.02)
    assert totals["pending_usd"] == pytest.approx(0.05)  # key(2) is still claimed
    assert totals["count"]["completed"] == 3 and totals["count"]["claimed"] == 1
    assert journal.spend_since(now - timedelta(seconds=1)) == pytest.approx(0.10)
    assert journal.spend_since(now - timedelta(seconds=1), pending=False) == pytest.approx(0.05)
    assert journal.spend_since(now - timedelta(seconds=1), backend="local") == 0.0
    assert journal.spend_since(now + timedelta(hours=1)) == 0.0

    assert [e.key for e in journal.entries(character="hero")] == [key(0), key(1)]
    assert [e.key for e in journal.entries(state=State.CLAIMED)] == [key(2)]
    assert journal.entries(backend="local", character="hero") == []

    import pandas as pd

    frame = pd.DataFrame(journal.to_records())
    assert frame.groupby("character")["cost_usd"].sum().round(4).to_dict() == \
        {"hero": 0.05, "imp": 0.0}
    record = frame.set_index("key").loc[key(0)]
    assert record["request_id"] == "r0" and record["seed"] == 0 and record["files"] == 1


def test_sqlite_file_is_in_wal_mode(db):
    Journal.at(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_schema_compiles_for_postgresql():
    ddl = str(CreateTable(requests, if_not_exists=True).compile(dialect=postgresql.dialect()))
    assert "CREATE TABLE IF NOT EXISTS fal_requests" in ddl
    assert "PRIMARY KEY (key)" in ddl and "TIMESTAMP WITHOUT TIME ZONE" in ddl


def test_postgresql_round_trip(postgres):
    url = postgres.create_database("journal_unit")
    owner, other = Journal(url), Journal(url)
    with owner.engine.begin() as conn:
        conn.execute(requests.delete())
    assert begin(owner, 1).action is Action.SUBMIT
    assert begin(other, 1).action is Action.WAIT
    owner.mark_submitted(key(1), "req-pg")
    assert begin(other, 1).request_id == "req-pg"
    other.mark_failed(key(1), "503 runner_disconnected")
    assert begin(other, 1).action is Action.SUBMIT and begin(owner, 1).action is Action.WAIT
    rescue = begin(Journal(url, clock=later(3600)), 1)
    assert rescue.action is Action.SUBMIT and rescue.previous_state is State.IN_DOUBT
    assert owner.totals()["count"]["claimed"] == 1


# -- several processes on one SQLite file ---------------------------------------------

WORKER = textwrap.dedent("""
    import json, os, sys, time
    from datetime import datetime, timedelta, timezone
    from pathlib import Path
    from fal_assets.journal import Journal, request_key
    db, n, offset, go, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
    open_journal = lambda: Journal.at(db, clock=lambda: datetime.now(timezone.utc) + timedelta(seconds=offset))
    journal = None if mode == "fresh" else open_journal()
    Path(f"{go}.ready.{os.getpid()}").touch()
    while not go.exists():
        time.sleep(0.001)
    journal = journal or open_journal()  # "fresh": every process creates the tables at once
    out = {}
    for i in range(n):
        a = {"prompt": f"hero pose {i}", "seed": i, "image_size": {"width": 1024, "height": 768}}
        d = journal.begin(request_key("fal-ai/flux-2", a), "fal-ai/flux-2", a, backend="fal", estimate_usd=0.03)
        out[d.entry.key] = [d.action.value, d.previous_state, d.entry.attempts]
    if mode == "crash":
        os._exit(3)  # died after claiming, before any request id was recorded
    # A live owner holds its claims: stay alive until every racer is done, so a claim is
    # never taken for a crashed one (the journal checks whether a local owner's pid lives).
    Path(f"{go}.done.{os.getpid()}").touch()
    while not Path(f"{go}.release").exists():
        time.sleep(0.005)
    print(json.dumps(out))
""")


def race(db: Path, processes: int, n: int, *, offset: float = 0.0, mode: str = "race") -> list[dict]:
    crash = mode == "crash"
    go = db.parent / f"go-{os.urandom(4).hex()}"
    if mode != "fresh":
        Journal.at(db)  # tables exist before the workers start
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(db), str(n), str(offset), str(go), mode],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(processes)]
    db.parent.mkdir(parents=True, exist_ok=True)
    _wait_until_ready(procs, go)
    go.touch()
    if not crash:
        _wait_until_done(procs, go)
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == (3 if crash else 0), err
        if not crash:
            results.append(json.loads(out))
    return results


def _wait_until_done(procs, go: Path) -> None:
    """Wait until every racer has made its decisions, then let them all exit."""
    import time

    deadline = time.monotonic() + 60
    while len(list(go.parent.glob(f"{go.name}.done.*"))) < len(procs):
        assert time.monotonic() < deadline, "racers did not finish"
        assert all(p.poll() is None for p in procs), "a racer died"
        time.sleep(0.01)
    Path(f"{go}.release").touch()


def _wait_until_ready(procs, go: Path) -> None:
    """Wait until every worker has imported (and connected), so they race together."""
    import time

    deadline = time.monotonic() + 60
    while len(list(go.parent.glob(f"{go.name}.ready.*"))) < len(procs):
        for proc in procs:
            assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.01)


def submits_per_key(results: list[dict], n: int) -> dict[str, int]:
    counts = {key(i): 0 for i in range(n)}
    for result in results:
        assert set(result) == set(counts)
        for k, (action, _, _) in result.items():
            assert action in ("submit", "wait")
            counts[k] += action == "submit"
    return counts


def test_processes_racing_on_a_fresh_file_submit_each_key_once(db):
    results = race(db, processes=4, n=25, mode="fresh")
    assert set(submits_per_key(results, 25).values()) == {1}
    assert Journal.at(db).totals()["count"]["claimed"] == 25


def test_processes_racing_on_failed_rows_resubmit_each_once(db):
    journal = Journal.at(db)
    for i in range(15):
        begin(journal, i)
        journal.mark_failed(key(i), "503 runner_scheduling_failure")
    results = race(db, processes=4, n=15)
    assert set(submits_per_key(results, 15).values()) == {1}
    assert {e.attempts for e in journal.entries()} == {2}


def test_a_live_owner_with_a_running_lease_makes_others_wait(db):
    journal = Journal.at(db)
    assert begin(journal, 0).action is Action.SUBMIT
    other = Journal.at(db)  # another owner in this (live) process
    assert begin(other, 0).action is Action.WAIT
    assert owner_alive(journal.owner)


def test_crashed_owner_is_in_doubt_then_submitted_once(db):
    race(db, processes=1, n=10, mode="crash")
    journal = Journal.at(db)
    assert journal.totals()["count"]["claimed"] == 10
    # the leases still run, but the owner's pid is gone from this host: not alive
    assert not owner_alive(journal.get(key(0)).owner)
    results = race(db, processes=3, n=10, offset=121)  # after the default 120 s lease
    assert set(submits_per_key(results, 10).values()) == {1}
    for result in results:
        for action, previous, attempts in result.values():
            if action == "submit":
                assert previous == "in_doubt" and attempts == 2
    assert journal.totals()["count"]["claimed"] == 10
