"""One character end to end on Dagster's distributed executor (dagster-celery), the way a
team without a shared disk would run it (tests/celery_cluster.py starts it all):

Redis (Debian's redis-server) as the broker, PostgreSQL for Dagster's storage and the
journal, moto's S3 server as the store (``FAL_ASSETS_STORE_URL=s3://fal-assets/store``),
the fal emulator as fal, and two Celery workers, each in a folder of its own. The runs are
launched with ``dagster job execute`` from a third folder. Shown: every step ran on a
worker, each request was billed once, the sheets are in the bucket, and a worker killed
with ``kill -9`` in the middle of its pose requests is survived by a rerun that pays for
nothing twice (it follows the dead worker's fal request ids).

Skipped only where a server cannot be installed (redis-server, PostgreSQL) or the Python
packages of the ``dev`` extra are missing; .ci/run installs both servers.
"""

from __future__ import annotations

import hashlib
import io
import json
import signal
import time

import pytest

import celery_cluster
import postgres_server
from celery_cluster import STORE_URL, Cluster, stop, wait_for
from fal_assets.emulator import EmulatorProcess
from fal_assets.journal import Journal, State
from samples import TINY

pytestmark = pytest.mark.slow
postgres = postgres_server.postgres  # the session fixture: a throwaway PostgreSQL server
LATENCY = 3.0  # each fal job takes this long: the window in which a worker is killed
POSES = {"dagster/asset_partition_range_start": "bolt/idle", "dagster/asset_partition_range_end": "bolt/hop"}
BOLT = {"dagster/partition": "bolt"}
PREFIX = STORE_URL.split("/", 3)[3]  # the key prefix inside the bucket: "store"


@pytest.fixture
def cluster(postgres, tmp_path):
    reason = celery_cluster.skip_reason()
    if reason:
        pytest.skip(reason)
    with EmulatorProcess(concurrency=8, latency=LATENCY) as emulator:
        deployment = Cluster(tmp_path / "cluster", postgres, emulator, {"bolt": TINY.format(name="bolt")}, name="celery_e2e")
        try:
            yield deployment.start()
        finally:
            deployment.close()


def log_of(cluster, label: str) -> str:
    return (cluster.folder("launcher") / f"{label}.log").read_text(errors="replace")[-4000:]


def pose_entries(journal: Journal):
    return [e for e in journal.entries() if e.labels.get("asset") == "pose_images"]


def celery_steps(instance, run_id: str) -> dict[str, str]:
    """Each step the run executed -> the Celery worker that ran it (dagster-celery's engine event)."""
    import dagster as dg

    ran = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        worker = event.event_specific_data.metadata.get("Celery worker") if event.event_specific_data else None
        if worker is not None:
            ran[event.step_key] = worker.value
    return ran


def finished_steps(instance, run_id: str) -> set[str]:
    import dagster as dg

    return {r.dagster_event.step_key for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)}


def test_one_character_on_two_celery_workers_with_no_shared_disk(cluster):
    cluster.start_workers("worker-a", "worker-b")

    # 1. the chain: spec, 9 reference images, dataset, LoRA (and their checks)
    chain = cluster.run("character_job", BOLT, label="chain")
    assert chain.returncode == 0, log_of(cluster, "chain")

    # 2. the poses: once both pose requests are on fal, kill -9 the worker that sent them
    journal = Journal(cluster.journal_url)
    try:
        first = cluster.launch("poses_job", POSES, label="poses-killed")
        sent = wait_for(lambda: [e for e in pose_entries(journal) if e.state == State.SUBMITTED and e.request_id]
                        if len([e for e in pose_entries(journal) if e.request_id]) == 2 else None,
                        180, "pose requests submitted", first, cluster.folder("launcher") / "poses-killed.log")
        owner_pid = int(sent[0].owner.split(":")[1])
        victim = cluster.worker_of(owner_pid)
        assert victim in ("worker-a", "worker-b"), sent[0].owner
        cluster.kill_worker(victim)
        killed_ids = {e.key: e.request_id for e in sent}
        # the step died with its machine, so its run never hears back: stop it as an operator would
        stop(first, signal.SIGINT, timeout=60)
        assert all(e.state != State.COMPLETED for e in pose_entries(journal))  # killed before it recorded a result

        # 3. a new machine takes the dead one's place; the rerun follows the same fal requests
        cluster.start_workers("worker-c")
        rerun = cluster.run("poses_job", POSES, label="poses-rerun")
        assert rerun.returncode == 0, log_of(cluster, "poses-rerun")
        sheet = cluster.run("sheet_job", BOLT, label="sheet")
        assert sheet.returncode == 0, log_of(cluster, "sheet")

        entries = journal.entries()
    finally:
        journal.close()
    time.sleep(0.5)
    ledger = cluster.emulator.ledger()

    # each request billed once: 9 references + 1 training + 2 poses, nothing sent twice
    assert ledger["submitted"] == 12 and len(ledger["billed"]) == 12, ledger["submitted"]
    assert len({b["arguments_sha256"] for b in ledger["billed"]}) == 12
    assert len(entries) == 12 and {e.state for e in entries} == {State.COMPLETED}
    assert {e.request_id for e in entries} == {b["request_id"] for b in ledger["billed"]}
    assert {e.key: e.request_id for e in entries if e.key in killed_ids} == killed_ids  # followed, not resent
    assert sum(e.cost_usd for e in entries) == pytest.approx(ledger["total_usd"], abs=1e-9)
    # every file the journal records lives in the bucket, by URL
    assert all(f["url"].startswith(STORE_URL + "/objects/") for e in entries for f in e.files)

    # every step of every run ran on a worker; none in the launcher, which holds no files at all
    with cluster.instance() as instance:
        runs = {r.run_id: r for r in instance.get_runs()}
        assert len(runs) == 4
        workers_used = set()
        for run_id, run in runs.items():
            ran = celery_steps(instance, run_id)
            assert finished_steps(instance, run_id) <= set(ran), (run.job_name, ran)
            workers_used |= set(ran.values())
        rerun_run = next(r for r in runs.values() if r.job_name == "poses_job" and r.status.value == "SUCCESS")
        assert celery_steps(instance, rerun_run.run_id)["pose_images"].split("@")[0] != victim
        assert sum(r.status.value == "SUCCESS" for r in runs.values()) == 3
        follow_lines = [r.user_message for r in instance.all_logs(rerun_run.run_id) if "resuming request" in (r.user_message or "")]
    assert len(follow_lines) == 2, follow_lines  # both pose requests followed by id, no second submit
    assert victim in {w.split("@")[0] for w in workers_used} and len({w.split("@")[0] for w in workers_used}) >= 2
    launcher = cluster.folder("launcher")
    assert not (launcher / "output").exists() and not (launcher / ".fal-assets").exists()

    # the sheets are in the bucket: the pointer names the object, whose bytes are the sheet
    keys = set(cluster.bucket_keys())
    for name in ("sheet.png", "sheet.json", "sheet.tres", "contact_sheet.png", "sprite_layers/poses/idle.png", "sprite_layers/poses/hop.png"):
        assert f"{PREFIX}/index/bolt/{name}" in keys, name
    pointer = json.loads(cluster.get(f"{PREFIX}/index/bolt/sheet.png"))
    data = cluster.get(pointer["url"].split(f"s3://{celery_cluster.BUCKET}/", 1)[1])
    assert hashlib.sha256(data).hexdigest() == pointer["sha256"]
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.width > 0
    atlas = json.loads(cluster.get(json.loads(cluster.get(f"{PREFIX}/index/bolt/sheet.json"))["url"].split(f"s3://{celery_cluster.BUCKET}/", 1)[1]))
    assert set(atlas["frames"]) >= {"idle", "hop"} or len(atlas["frames"]) == 2
    # the killed worker's disk is gone from the story: its files never reached the others but through the bucket
    assert not (cluster.folder("worker-c") / "output" / "bolt" / "references").exists()
