"""The journal and Dagster's own storage on a real PostgreSQL server (a throwaway cluster
started by tests/postgres_server.py; skipped only where the server binaries are missing).

Two processes racing on the same requests pay once; the journal's rules hold on
PostgreSQL; Dagster's run history and the journal both live in PostgreSQL for a whole
character materialized through the demo's code path.
"""

import csv
import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from fal_assets.emulator import EmulatorProcess
from fal_assets.journal import Action, Journal, State, request_key

import postgres_server
from samples import TINY

pytestmark = pytest.mark.slow
postgres = postgres_server.postgres  # the session fixture: a throwaway PostgreSQL server
ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("fal_driver.py")
SENTINEL = "sk-sentinel-pg-3b9d0c7a:51e2f8aa6c04"
ENDPOINT = "fal-ai/flux-2-pro"

# Runs the driver with its first claim held until the start file appears, so that both
# racers send their first claims to PostgreSQL at the same moment.
RACER = textwrap.dedent("""
    import os, runpy, sys, time
    from pathlib import Path
    import fal_assets.journal as journal
    driver, spec, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    claim = journal.Journal.begin

    def begin(self, *args, **kwargs):
        if not go.exists():
            Path(f"{go}.ready.{os.getpid()}").touch()
            while not go.exists():
                time.sleep(0.0005)
        return claim(self, *args, **kwargs)

    journal.Journal.begin = begin
    sys.argv = [driver, spec]
    runpy.run_path(driver, run_name="__main__")
""")


def query(url, sql, **params):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def requests(n):
    return [{"endpoint": ENDPOINT, "arguments": {"prompt": f"a knight number {i} in silver armor, plain white background",
                                                  "image_size": {"width": 96, "height": 96}, "seed": i}}
            for i in range(n)]


def wait_ready(procs, go, timeout=60):
    deadline = time.monotonic() + timeout
    while len(list(go.parent.glob(f"{go.name}.ready.*"))) < len(procs):
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"racer exited early: {proc.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, "racers not ready"
        time.sleep(0.01)
    go.touch()


# -- 1. two processes, one journal on PostgreSQL, each image paid once --------------------


def test_two_processes_racing_on_the_same_requests_pay_once(postgres, tmp_path):
    url = postgres.create_database("race")
    Journal(url).close()  # the tables exist, so both racers start claiming at once
    go = tmp_path / "go"
    batch = requests(10)
    with EmulatorProcess(concurrency=8, latency=0.3) as emulator:
        env = {**os.environ, **emulator.env, "FAL_KEY": SENTINEL, "PYTHONPATH": str(ROOT)}
        procs = []
        for name, order in (("a", batch), ("b", batch[::-1])):  # opposite orders meet in the middle
            spec = tmp_path / f"{name}.json"
            spec.write_text(json.dumps({"workdir": str(tmp_path / name), "journal_url": url, "requests": order,
                                        "concurrency": 4, "poll_interval": 0.05}))
            procs.append(subprocess.Popen([sys.executable, "-c", RACER, str(DRIVER), str(spec), str(go)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
        wait_ready(procs, go)
        outputs = [proc.communicate(timeout=120) for proc in procs]
        ledger = emulator.ledger()
    summaries = []
    for proc, (out, err), name in zip(procs, outputs, "ab"):
        (tmp_path / f"{name}.log").write_text(err)
        assert proc.returncode == 0, err[-3000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))

    billed_ids = {b["request_id"] for b in ledger["billed"]}
    assert ledger["submitted"] == 10 and len(ledger["billed"]) == 10
    assert len({b["arguments_sha256"] for b in ledger["billed"]}) == 10  # no body paid twice
    for summary in summaries:  # each process has all 10 images, by the one request id each
        assert summary["errors"] == [] and len(summary["ok"]) == 10
        assert {o["request_id"] for o in summary["ok"]} == billed_ids
        assert all(Path(f).is_file() for o in summary["ok"] for f in o["files"])
        assert summary["totals"]["billed_usd"] == pytest.approx(ledger["total_usd"], abs=1e-9)
    rows = query(url, "select state, request_id, owner, cost_usd from fal_requests")
    assert len(rows) == 10 and {r.state for r in rows} == {"completed"}
    assert {r.request_id for r in rows} == billed_ids
    assert sum(r.cost_usd for r in rows) == pytest.approx(ledger["total_usd"], abs=1e-9)
    # the race really happened: both processes won some claims and followed the other's
    assert len({r.owner for r in rows}) == 2
    assert all("resuming request" in (tmp_path / f"{n}.log").read_text() for n in "ab")
    assert SENTINEL not in json.dumps([list(r) for r in rows])


# Two workers on one journal: A (one slot) queues 4 requests, B joins later with 4 slots.
QUEUED_CLAIMS = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from fal_assets.backends import make_backend
    from fal_assets.generate import Generator, Request, Settings
    from fal_assets.journal import Journal
    from fal_assets.store import ContentStore

    url, work, batch = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])

    async def worker(name, concurrency, delay):
        await asyncio.sleep(delay)
        settings = Settings(backend="fal", journal_url=url, store_root=work / name, concurrency=concurrency,
                            poll_interval=0.05, retry_base=0.05, retry_cap=1.0)
        backend = make_backend("fal", request_timeout=10)
        journal = Journal(url, lease_seconds=1.0)  # a short lease, so queueing outlasts it
        generator = Generator(backend, journal, ContentStore(settings.store_root), settings, on_event=lambda m: None)
        try:
            outcomes = await generator.generate_many([Request(r["endpoint"], r["arguments"]) for r in batch])
        finally:
            await backend.aclose()
            journal.close()
        return [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]

    async def main():
        print(json.dumps(await asyncio.gather(worker("a", 1, 0.0), worker("b", 4, 1.5))))

    asyncio.run(main())
""")


def test_a_claim_queued_behind_the_concurrency_limit_is_not_paid_twice(postgres, tmp_path):
    """Worker A holds its claims only while it has a slot; B takes the rest. Claimed before a
    slot, A's queued claims would outlive the 1 s lease, and A and B would both pay."""
    url = postgres.create_database("queued")
    with EmulatorProcess(concurrency=4, latency=1.0) as emulator:
        env = {**os.environ, **emulator.env, "FAL_KEY": SENTINEL, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", QUEUED_CLAIMS, url, str(tmp_path), json.dumps(requests(4))],
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        errors = json.loads(proc.stdout.strip().splitlines()[-1])
        time.sleep(1.5)  # anything sent twice finishes and is billed
        ledger = emulator.ledger()
    assert errors == [[], []], errors
    assert ledger["submitted"] == 4 and len(ledger["billed"]) == 4, ledger["submitted"]


# -- 2. the journal's rules on PostgreSQL ------------------------------------------------


def test_journal_round_trip_on_postgresql(postgres):
    url = postgres.create_database("journal_unit")
    owner, other = Journal(url), Journal(url)
    try:
        arguments = {"prompt": "a knight", "seed": 7, "image_size": {"width": 1024, "height": 768}}
        key = "emulator:" + request_key(ENDPOINT, arguments)  # the generator's keys for non-fal backends
        first = owner.begin(key, ENDPOINT, arguments, backend="emulator", estimate_usd=0.03, labels={"run_id": "r1"})
        assert first.action is Action.SUBMIT and first.entry.attempts == 1
        assert other.begin(key, ENDPOINT, arguments, backend="emulator", estimate_usd=0.03).action is Action.WAIT
        assert owner.totals()["pending_usd"] == pytest.approx(0.03)

        owner.mark_submitted(key, "req-pg-1")
        resumed = other.begin(key, ENDPOINT, arguments, backend="emulator", estimate_usd=0.03)
        assert resumed.action is Action.RESUME and resumed.request_id == "req-pg-1"

        files = [{"slot": "images.0", "path": "/store/ab.png", "sha256": "ab" * 32}]
        done = other.mark_completed(key, files=files, cost_usd=0.03, cost_kind="billed", result={"seed": 7})
        again = owner.mark_completed(key, files=files, cost_usd=0.03, cost_kind="billed")  # a second follower
        assert done.state is State.COMPLETED and again.cost_usd == pytest.approx(0.03)  # counted once
        assert done.completed_at.tzinfo is not None and done.created_at <= done.completed_at
        cached = owner.begin(key, ENDPOINT, arguments, backend="emulator", estimate_usd=0.03)
        assert cached.action is Action.CACHED and cached.entry.files == files and cached.entry.seed == 7

        totals = owner.totals()
        assert totals["billed_usd"] == pytest.approx(0.03) and totals["pending_usd"] == 0
        assert totals["count"]["completed"] == 1
        assert [e.key for e in owner.entries(run_id="r1")] == [key] and owner.entries(run_id="r2") == []
        since = datetime.now(timezone.utc) - timedelta(minutes=5)
        assert owner.spend_since(since, backend="emulator") == pytest.approx(0.03)

        # a claim whose owner's lease ran out is in doubt, and exactly one racer takes it over
        k2 = request_key(ENDPOINT, {**arguments, "seed": 8})
        owner.begin(k2, ENDPOINT, {**arguments, "seed": 8}, backend="fal", estimate_usd=0.03)
        late = [Journal(url, clock=lambda: datetime.now(timezone.utc) + timedelta(hours=1)) for _ in range(2)]
        decisions = [j.begin(k2, ENDPOINT, {**arguments, "seed": 8}, backend="fal", estimate_usd=0.03) for j in late]
        assert [d.action for d in decisions] == [Action.SUBMIT, Action.WAIT]
        assert decisions[0].previous_state is State.IN_DOUBT and decisions[0].entry.attempts == 2
        for journal in late:
            journal.close()
    finally:
        owner.close()
        other.close()


# -- 3. Dagster's own storage on PostgreSQL, with the journal there too ------------------

# demo.run with the fal resource's journal on PostgreSQL
DEMO_ON_POSTGRES = textwrap.dedent("""
    import os, sys
    from dagster_project import demo
    sys.exit(demo.run(folder=sys.argv[1], output="output", workdir=".fal-assets", backend="local",
                      journal_url=os.environ["JOURNAL_URL"]))
""")

DAGSTER_YAML = postgres_server.DAGSTER_STORAGE_YAML + """\
concurrency:
  pools:
    default_limit: 2
telemetry:
  enabled: false
"""


def test_dagster_storage_and_journal_on_postgresql(postgres, tmp_path, monkeypatch):
    dagster_url, journal_url = postgres.create_database("dagster"), postgres.create_database("journal_dagster")
    home = tmp_path / ".dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "bolt.yaml").write_text(TINY.format(name="bolt"))
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT), "JOURNAL_URL": journal_url,
           "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(postgres.port), "DAGSTER_PG_USERNAME": "postgres",
           "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": "dagster"}
    env.pop("FAL_KEY", None)
    proc = subprocess.run([sys.executable, "-c", DEMO_ON_POSTGRES, str(folder)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    (tmp_path / "demo.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert {p.name for p in (tmp_path / "output" / "bolt" / "sprite_layers" / "poses").glob("*.png")} == {"idle.png", "hop.png"}

    # the run history is in PostgreSQL, not in SQLite files under DAGSTER_HOME
    runs = query(dagster_url, "select run_id, status from runs")
    assert len(runs) == 4 and {r.status for r in runs} == {"SUCCESS"}  # 3 steps for bolt + cost_report
    materialized = {r.asset_key for r in query(
        dagster_url, "select distinct asset_key from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'")}
    assert {'["pose_images"]', '["character_lora"]', '["sprite_sheet"]'} <= materialized
    assert not list(home.rglob("*.db"))
    import dagster as dg

    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, env[name])  # this process reads the same dagster.yaml
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert {r.run_id for r in instance.get_runs()} == {r.run_id for r in runs}
        poses = instance.fetch_materializations(dg.AssetKey("pose_images"), limit=100).records
        assert {r.asset_materialization.partition for r in poses} == {"bolt/idle", "bolt/hop"}
        pool = instance.event_log_storage.get_concurrency_info("fal")  # dagster.yaml's default_limit
        assert (pool.slot_count, pool.limit, pool.using_default_limit, pool.claimed_slots) == (2, 2, True, [])

    # the journal is in PostgreSQL too, and every row names a run Dagster recorded there
    journal = Journal(journal_url)
    try:
        entries = journal.entries()
        assert len(entries) == 12 and {e.state for e in entries} == {State.COMPLETED}  # 9 refs + 1 LoRA + 2 poses
        assert {e.backend for e in entries} == {"local"} and all(e.key.startswith("local@") for e in entries)
        assert {e.labels["run_id"] for e in entries} <= {r.run_id for r in runs}
    finally:
        journal.close()
    # the cost_report asset reads the same journal: 12 requests, what fal would have charged
    report = list(csv.DictReader((tmp_path / "output" / "_reports" / "cost_report.csv").open()))
    assert sum(int(r["requests"]) for r in report) == 12
    assert sum(float(r["estimated_usd"]) for r in report) == pytest.approx(sum(e.estimate_usd for e in entries))
