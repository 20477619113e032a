"""What Dagster adds per partition, what an unchanged re-run costs, and whether either
grows with the number of partition keys; then the sensor tick and the fan-out.

    python bench/dagster_bench.py [--poses 40 200] [--keys 30000] [--quick]

For one character with P poses on the local backend, in one process, each P:
  - library: ``pipeline.pose_images`` + ``pipeline.sprite`` per pose, as the assets call
    them, in a fresh working folder (what the work itself costs);
  - dagster: the same poses as one single-run range of ``pose_images`` + ``sprites``
    (with their checks) through ``dg.materialize``, in another fresh folder;
  - overhead per partition = (dagster - library) / P; unchanged re-run per partition =
    the same range again (journal and cutout-cache hits, $0);
  - the same unchanged re-run with the definitions holding ``--keys`` pose keys (other
    characters): no growth expected with static partitions.
Then the library sensor at 100 characters x 100 poses (unchanged, one spec changed)
and the fan-out client at N=48/C=8/L=1 s and N=200/C=16/L=0.5 s against the bound
(``fanout_bench.py``). Targets: 50 ms overhead, 100 ms unchanged, no growth with keys,
a tick under 1 s unchanged and 5 s with one change, fan-out within 1.15x of the bound.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
warnings.filterwarnings("ignore")

SPEC = """\
name: {name}
trigger_word: {name}_char
description: a small round green slime with two dot eyes
style: flat pixel art
palette:
  body: "#33CC66"
models: {{pose: fal-ai/flux-2-flex}}
image_size: {{width: 256, height: 256}}
poses:
{poses}"""


def library(folder: Path, poses: int, extra_keys: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"  pose{j:03d}: standing pose number {j}, arms at angle {j % 7}\n" for j in range(poses))
    (folder / "hero.yaml").write_text(SPEC.format(name="hero", poses=lines))
    per, i = 100, 0
    while extra_keys > 0:
        count = min(per, extra_keys)
        other = "".join(f"  move{j:03d}: special move number {j}\n" for j in range(count))
        (folder / f"npc{i:04d}.yaml").write_text(SPEC.format(name=f"npc{i:04d}", poses=other))
        extra_keys -= count
        i += 1


def library_path(work: Path, folder: Path) -> float:
    from fal_assets import pipeline
    from fal_assets.cutout import make_cutter
    from fal_assets.generate import Settings, generate_all
    from fal_assets.spec import load_spec

    spec = load_spec(folder / "hero.yaml")
    settings = Settings(backend="local", store_root=work / "fal" / "store")
    cutter = make_cutter("key")
    start = time.perf_counter()
    made = pipeline.pose_images(spec, list(spec.poses), None, work / "output" / "hero" / "poses_raw",
                                lambda requests: generate_all(requests, settings), "final")
    for pose, image in made.items():
        pipeline.sprite(image.path, work / "output" / "hero" / "cutouts" / f"{pose}.png", cutter)
    return time.perf_counter() - start


def dagster_path(work: Path, folder: Path, instance, runs: int = 1) -> list[float]:
    import dagster as dg

    from dagster_project.definitions import build_defs, graph
    from partitions_bench import local_resources
    from dagster_project.partitions import join
    from fal_assets.spec import load_spec

    spec = load_spec(folder / "hero.yaml")
    everything = graph(build_defs(str(folder), reload=lambda location: "bench"))
    poses = list(spec.poses)
    tags = {"dagster/asset_partition_range_start": join("hero", poses[0]), "dagster/asset_partition_range_end": join("hero", poses[-1])}
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = dg.materialize(everything, selection=["pose_images", "sprites"], instance=instance, resources=local_resources(work, folder),
                                tags=tags, run_config=quiet)
        assert result.success
        times.append(time.perf_counter() - start)
    return times


def instance(temp_dir: Path, postgres):
    """A Dagster instance on SQLite (what ``dagster dev`` uses by default) or on ``postgres``."""
    import dagster as dg

    temp_dir.mkdir()
    if postgres is None:
        return dg.instance_for_test(temp_dir=str(temp_dir))
    url = postgres.create_database(f"bench_{temp_dir.name}_{os.getpid()}_{time.monotonic_ns()}")
    return dg.instance_for_test(temp_dir=str(temp_dir), overrides={"storage": {"postgres": {"postgres_url": url}}})


def per_partition(poses: int, extra_keys: int, postgres=None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "characters"
        library(folder, poses)
        lib = library_path(tmp / "lib", folder)
        with instance(tmp / "instance", postgres) as dagster_instance:
            first, *again = dagster_path(tmp / "dag", folder, dagster_instance, runs=3)
        out = {"library_s": lib, "dagster_s": first, "rerun_s": min(again)}
        if extra_keys:
            big = tmp / "big"
            library(big, poses, extra_keys)
            with instance(tmp / "instance2", postgres) as dagster_instance:
                dagster_path(tmp / "dag", big, dagster_instance)  # journal and cutouts from the run above: all hits
                out["rerun_keys_s"] = min(dagster_path(tmp / "dag", big, dagster_instance, runs=2))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--poses", type=int, nargs="+", default=[40, 200])
    parser.add_argument("--keys", type=int, default=30000)
    parser.add_argument("--quick", action="store_true", help="skip the sensor and fan-out parts")
    parser.add_argument("--storage", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"],
                        help="Dagster's storage: SQLite (dagster dev's default) and a local PostgreSQL server (fsync on)")
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp())
    with contextlib.ExitStack() as stack:
        for storage in args.storage:
            postgres = stack.enter_context(postgres_server()) if storage == "postgres" else None
            if storage == "postgres" and postgres is None:
                print("postgres: skipped (no PostgreSQL server binaries; see tests/postgres_server.py)", flush=True)
                continue
            per_storage(args, storage, postgres)
    if args.quick:
        return
    from partitions_bench import run_one

    tick = run_one(100, 100, "own")
    print(f"sensor, 100 x 100 own poses: unchanged tick {tick['tick_unchanged_s']:.2f} s (target 1), "
          f"one spec changed {tick['tick_changed_s']:.2f} s (target 5)", flush=True)
    for n, c, latency in ((48, 8, 1.0), (200, 16, 0.5)):
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "fanout_bench.py"), "--n", str(n), "--concurrency", str(c),
                              "--latency", str(latency), "--skip-seed000"], capture_output=True, text=True, check=True).stdout
        print("fan-out " + " / ".join(line.strip() for line in out.strip().splitlines()), flush=True)


@contextlib.contextmanager
def postgres_server():
    """A throwaway PostgreSQL cluster with fsync on (tests/postgres_server.py), or None."""
    sys.path.insert(0, str(ROOT / "tests"))
    from postgres_server import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as root:
        server = PostgresServer(bindir, Path(root), durable=True).start()
        try:
            yield server
        finally:
            server.stop()


def per_storage(args, storage: str, postgres) -> None:
    for count in args.poses:
        found = per_partition(count, args.keys if count == args.poses[0] else 0, postgres)
        overhead = (found["dagster_s"] - found["library_s"]) / count * 1000
        line = (f"{storage}, {count} poses: library {found['library_s']:.2f} s, through Dagster {found['dagster_s']:.2f} s -> "
                f"overhead {overhead:.0f} ms per partition (target 50); unchanged re-run {found['rerun_s'] / count * 1000:.0f} ms "
                f"per partition (target 100)")
        if "rerun_keys_s" in found:
            line += (f"; with {args.keys:,} more pose keys {found['rerun_keys_s'] / count * 1000:.0f} ms "
                     f"({found['rerun_keys_s'] / found['rerun_s']:.2f}x)")
        print(line, flush=True)


if __name__ == "__main__":
    main()
