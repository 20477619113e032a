"""One character's 24 poses on one Celery worker against two, with the store in S3.

    python bench/celery_bench.py [--poses 24] [--concurrency 8] [--latency 3.0] [--runs 2]

Starts the deployment tests/test_celery.py uses (tests/celery_cluster.py): Redis as the
broker, a throwaway PostgreSQL for Dagster's storage and the journal, moto's S3 server as
the store, the fal emulator with ``--concurrency C --latency L``, each worker in a folder
of its own. Two characters with the same spec but their names (so neither's requests are
the other's journal hits) get their chain (references, dataset, LoRA) first, untimed.
Then, timed from the launch of the runs to the end of the last one, each character's
poses (``pose_images`` + ``sprites`` and their checks) as ``--runs`` runs of equal pose
ranges launched together:

  - one worker  (``--concurrency=1``): the runs' steps take turns on it;
  - two workers: the runs' steps run side by side.

Each step sends its requests with ``FalResource(concurrency=C)``; the emulator, like a fal
account, runs at most C at once and queues the rest. The bound is ceil(P/C) * L: no
client beats the queue. Printed: each wall time, its ratio to the bound, and one worker's
time over two workers'. Run configs name the fal resource's whole config (a run config
for a resource replaces the definitions' values, it does not merge with them).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SPEC = """\
name: {name}
trigger_word: {name}_char
description: a small round green slime with two dot eyes
style: flat pixel art
palette:
  body: "#33CC66"
image_size: {{width: 512, height: 512}}
poses:
{poses}views:
{views}"""


def spec(name: str, poses: int) -> str:
    from fal_assets.spec import DEFAULT_VIEWS

    lines = "".join(f"  pose{j:02d}: standing pose number {j}, arms at angle {j % 7}\n" for j in range(poses))
    views = "".join(f"  {view}: {text}\n" for view, text in list(DEFAULT_VIEWS.items())[:9])
    return SPEC.format(name=name, poses=lines, views=views)


def ranges(name: str, poses: int, runs: int) -> list[dict[str, str]]:
    keys = [f"{name}/pose{j:02d}" for j in range(poses)]
    size = math.ceil(poses / runs)
    return [{"dagster/asset_partition_range_start": chunk[0], "dagster/asset_partition_range_end": chunk[-1]}
            for chunk in (keys[i:i + size] for i in range(0, poses, size))]


def run_config(concurrency: int) -> dict:
    fal = {"api_key": {"env": "FAL_KEY"}, "journal_url": {"env": "FAL_ASSETS_JOURNAL_URL"},
           "store_url": {"env": "FAL_ASSETS_STORE_URL"}, "concurrency": concurrency, "poll_interval": 0.1}
    return {"resources": {"fal": {"config": fal}}, "loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def launch_all(cluster, job: str, tag_sets: list[dict], config: dict, label: str) -> float:
    started = time.monotonic()
    procs = [cluster.launch(job, tags, run_config=config, label=f"{label}-{i}") for i, tags in enumerate(tag_sets)]
    for i, proc in enumerate(procs):
        proc.wait(1800)
        if proc.returncode != 0:
            log = (cluster.folder("launcher") / f"{label}-{i}.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"{label}-{i} failed:\n{log}")
    return time.monotonic() - started


def step_times(cluster) -> dict[str, dict[str, list[float]]]:
    """Character -> step -> the duration of each run's step, from Dagster's storage."""
    found: dict[str, dict[str, list[float]]] = {}
    with cluster.instance() as instance:
        for run in instance.get_runs():
            if run.job_name != "poses_job":
                continue
            character = run.tags["dagster/asset_partition_range_start"].split("/")[0]
            for stat in instance.get_run_step_stats(run.run_id):
                if stat.step_key in ("pose_images", "sprites") and stat.end_time and stat.start_time:
                    found.setdefault(character, {}).setdefault(stat.step_key, []).append(stat.end_time - stat.start_time)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--poses", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=8, help="the emulator's (the account's) concurrency C")
    parser.add_argument("--latency", type=float, default=3.0, help="seconds each fal job takes (L)")
    parser.add_argument("--runs", type=int, default=2, help="runs the poses are split into (pose ranges)")
    parser.add_argument("--keep", action="store_true", help="keep the folders (logs) afterwards")
    args = parser.parse_args()

    import celery_cluster
    import postgres_server
    from celery_cluster import Cluster
    from fal_assets.emulator import EmulatorProcess

    reason = celery_cluster.skip_reason() or postgres_server.skip_reason()
    if reason:
        raise SystemExit(f"cannot start the deployment: {reason}")
    root = Path(tempfile.mkdtemp(prefix="fal-assets-celery-bench-"))
    pg_root = Path(tempfile.mkdtemp(prefix="fal-assets-pg-"))
    postgres = postgres_server.PostgresServer(postgres_server.find_bindir(), pg_root).start()
    config = run_config(args.concurrency)
    bound = math.ceil(args.poses / args.concurrency) * args.latency
    try:
        with EmulatorProcess(concurrency=args.concurrency, latency=args.latency) as emulator:
            specs = {name: spec(name, args.poses) for name in ("solo", "duo")}
            cluster = Cluster(root / "cluster", postgres, emulator, specs, name="bench").start()
            try:
                cluster.start_workers("worker-a", "worker-b")
                print(f"celery bench: P={args.poses} poses, C={args.concurrency}, L={args.latency}s, {args.runs} runs "
                      f"of {math.ceil(args.poses / args.runs)} poses; bound ceil(P/C)*L = {bound:.1f}s", flush=True)
                setup = launch_all(cluster, "character_job", [{"dagster/partition": n} for n in specs], config, "chain")
                print(f"  (untimed) both chains on two workers: {setup:.1f}s", flush=True)

                cluster.stop_worker("worker-b")  # one worker left
                one = launch_all(cluster, "poses_job", ranges("solo", args.poses, args.runs), config, "one")
                cluster.start_workers("worker-b")
                two = launch_all(cluster, "poses_job", ranges("duo", args.poses, args.runs), config, "two")
                ledger = emulator.ledger()
                steps = step_times(cluster)
            finally:
                cluster.close()
        distinct = len({b["arguments_sha256"] for b in ledger["billed"]})
        print(f"  one worker : {one:6.1f}s  {one / bound:5.2f}x the bound")
        print(f"  two workers: {two:6.1f}s  {two / bound:5.2f}x the bound")
        print(f"  one / two  : {one / two:5.2f}x")
        per_step = math.ceil(math.ceil(args.poses / args.runs) / args.concurrency) * args.latency
        for character, mode in (("solo", "one worker "), ("duo", "two workers")):
            shown = ", ".join(f"{step} {', '.join(f'{t:.1f}' for t in times)}s" for step, times in sorted(steps.get(character, {}).items()))
            print(f"  {mode} steps (pose_images alone >= {per_step:.0f}s each): {shown}")
        print(f"  emulator ledger: {ledger['submitted']} submitted, {len(ledger['billed'])} billed, {distinct} distinct "
              "(the two chains share their reference requests: same prompts)")
        return 0 if ledger["submitted"] == len(ledger["billed"]) == distinct else 1
    finally:
        postgres.stop()
        shutil.rmtree(pg_root, ignore_errors=True)
        if args.keep:
            print(f"  folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
