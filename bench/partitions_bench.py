"""Partitions at a studio's scale: a generated library of characters x poses, two shapes.

    python bench/partitions_bench.py [--characters 100] [--poses 100]

Shapes: ``shared`` (every character has the same pose names) and ``own`` (every
character has pose names of its own: the cross product of names would be
characters x characters*poses). For each, at the full size and at half the characters,
each in a fresh process, prints: definitions load (``build_defs``: scan, parse and
validate every spec, build the partitions and the graph), the library sensor's first
tick (every chain requested) and a tick after one spec changed, a ``backfill --dry-run``
of everything, the partition count per per-pose asset, and peak memory. Then the
ratios: full / half (2.0 = linear in real pairs) and own / shared (1.0 = no growth with
the cross product of names, which is 100x larger for ``own``).
Targets: load < 5 s, a tick < 30 s, the dry run < 60 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = """\
name: {name}
trigger_word: {name}_char
description: a small round {colour} slime with two dot eyes, number {i}
style: flat pixel art
palette:
  body: "{hex}"
poses:
{poses}"""


def write_library(folder: Path, characters: int, poses: int, shape: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(characters):
        name = f"char{i:03d}"
        prefix = "" if shape == "shared" else f"{name}_"
        lines = "".join(f"  {prefix}pose{j:03d}: standing pose number {j}, arms at angle {j % 7}\n" for j in range(poses))
        (folder / f"{name}.yaml").write_text(SPEC.format(name=name, colour="green", i=i, hex=f"#{(i * 2654435) % 0xFFFFFF:06X}", poses=lines))


def local_resources(work: Path, folder: Path) -> dict:
    """The resources of an offline run of ``folder``'s specs in ``work`` (local backend, keying)."""
    from dagster_project.resources import CharacterLibrary, CutoutResource, FalResource, StoreResource

    return {
        "fal": FalResource(backend="local", workdir=str(work / "fal")),
        "store": StoreResource(root=str(work / "output")),
        "cutout": CutoutResource(method="key"),
        "characters": CharacterLibrary(folder=str(folder)),
    }


def load_definitions(folder: Path, work: Path):
    """(repository, resources, seconds the definitions took to load) for ``folder``, with
    ``DAGSTER_HOME`` in ``work`` (this process)."""
    import warnings

    warnings.filterwarnings("ignore")
    os.environ["DAGSTER_HOME"] = str(work / "dagster")
    (work / "dagster").mkdir(parents=True, exist_ok=True)
    from dagster_project.definitions import build_defs

    resources = local_resources(work, folder)
    start = time.perf_counter()
    repo = build_defs(str(folder), resources, reload=lambda location: "bench: no reload").get_repository_def()
    return repo, resources, time.perf_counter() - start


def dry_run(resources: dict) -> dict:
    """``backfill --dry-run`` of everything: its time, exit code and total line; peak memory."""
    from dagster_project import backfill

    buffer = io.StringIO()
    start = time.perf_counter()
    with redirect_stdout(buffer):
        code = backfill.main(["--dry-run"], resources)
    return {"dry_run_s": time.perf_counter() - start, "dry_run_exit": code,
            "dry_run_total": buffer.getvalue().strip().splitlines()[-1],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(folder: Path, work: Path) -> dict:
    """One library, in this process."""
    import dagster as dg

    repo, resources, load_s = load_definitions(folder, work)
    out = {"load_s": load_s}
    out["pose_partitions"] = len(repo.assets_defs_by_key[dg.AssetKey("pose_images")].partitions_def.get_partition_keys())

    sensor = repo.get_sensor_def("character_library_sensor")
    (work / "instance").mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(work / "instance")) as instance:
        def tick(cursor):
            context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repo, resources=resources)
            began = time.perf_counter()
            data = sensor.evaluate_tick(context)
            return time.perf_counter() - began, data

        out["tick_first_s"], data = tick(None)
        out["tick_first_runs"] = len(data.run_requests)
        out["tick_unchanged_s"], again = tick(data.cursor)
        first = sorted(folder.glob("*.yaml"))[0]
        first.write_text(first.read_text().replace("arms at angle 3", "arms at angle 3, smiling"))
        out["tick_changed_s"], _ = tick(again.cursor)

    return {**out, **dry_run(resources)}


def run_one(characters: int, poses: int, shape: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "characters"
        write_library(folder, characters, poses, shape)
        proc = subprocess.run([sys.executable, __file__, "--child", str(folder), str(Path(tmp) / "work")],
                              capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0:
            raise SystemExit(f"{shape} {characters}x{poses} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--characters", type=int, default=100)
    parser.add_argument("--poses", type=int, default=100)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), Path(args.child[1]))))
        return
    half = max(1, args.characters // 2)
    results = {}
    for shape in ("shared", "own"):
        for count in (half, args.characters):
            found = results[(shape, count)] = run_one(count, args.poses, shape)
            names = args.poses if shape == "shared" else count * args.poses
            print(f"{shape:6} {count:4d} x {args.poses} poses: {found['pose_partitions']} pose partitions "
                  f"(cross product of names would be {count * names:,}); load {found['load_s']:.2f} s; "
                  f"sensor first tick {found['tick_first_s']:.2f} s ({found['tick_first_runs']} runs), "
                  f"unchanged {found['tick_unchanged_s']:.2f} s, one spec changed {found['tick_changed_s']:.2f} s; "
                  f"dry run {found['dry_run_s']:.2f} s; peak {found['peak_rss_mb']:.0f} MB")
    print(f"dry run of the full 'own' library: {results[('own', args.characters)]['dry_run_total']}")
    for what in ("load_s", "tick_first_s", "tick_changed_s", "dry_run_s"):
        linear = [results[(s, args.characters)][what] / results[(s, half)][what] for s in ("shared", "own")]
        shape_ratio = results[("own", args.characters)][what] / results[("shared", args.characters)][what]
        print(f"{what:15} full/half: shared {linear[0]:.2f}x, own {linear[1]:.2f}x (2.0 = linear); own/shared {shape_ratio:.2f}x")
    full = [results[(s, args.characters)] for s in ("shared", "own")]
    ok = all(r["load_s"] < 5 and max(r["tick_first_s"], r["tick_changed_s"]) < 30 and r["dry_run_s"] < 60 for r in full)
    print(f"targets (load < 5 s, tick < 30 s, dry run < 60 s) at {args.characters} x {args.poses}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
