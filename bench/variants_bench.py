"""Variants at a studio's scale: what variant partitions add to loading and to a dry run.

    python bench/variants_bench.py [--characters 100] [--poses 100] [--variants 0 1 2]

For each number of variants per character (every variant on every pose), in a fresh
process on the same generated library: definitions load (``build_defs``), the number of
variant partitions (exactly characters x poses x variants: the real triples), and a
``backfill --dry-run`` of everything (its requests, the variant edits priced one by one).
Then each count against the library without variants, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = """\
name: {name}
trigger_word: {name}_char
description: a small round green slime with two dot eyes, number {i}
style: flat pixel art
palette:
  body: "#33CC66"
poses:
{poses}{variants}"""


def write_library(folder: Path, characters: int, poses: int, variants: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"  pose{j:03d}: standing pose number {j}, arms at angle {j % 7}\n" for j in range(poses))
    extra = "variants:\n" + "".join(
        f"  skin{k}: {{instruction: Recolor the slime for team {k}, palette: {{body: \"#{(k * 40) % 256:02X}3366\"}}}}\n" for k in range(variants)
    ) if variants else ""
    for i in range(characters):
        (folder / f"char{i:03d}.yaml").write_text(SPEC.format(name=f"char{i:03d}", i=i, poses=lines, variants=extra))


def measure(folder: Path, work: Path) -> dict:
    import dagster as dg

    from partitions_bench import dry_run, load_definitions

    repo, resources, load_s = load_definitions(folder, work)
    out = {"load_s": load_s}
    out["variant_partitions"] = len(repo.assets_defs_by_key[dg.AssetKey("variant_images")].partitions_def.get_partition_keys())
    return {**out, **dry_run(resources)}


def run_one(characters: int, poses: int, variants: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "characters"
        write_library(folder, characters, poses, variants)
        proc = subprocess.run([sys.executable, __file__, "--child", str(folder), str(Path(tmp) / "work")],
                              capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0:
            raise SystemExit(f"{variants} variants failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--characters", type=int, default=100)
    parser.add_argument("--poses", type=int, default=100)
    parser.add_argument("--variants", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), Path(args.child[1]))))
        return
    results = {}
    for count in sorted(set([0, *args.variants])):
        found = results[count] = run_one(args.characters, args.poses, count)
        print(f"{args.characters} x {args.poses} poses, {count} variants: {found['variant_partitions']} variant partitions; "
              f"load {found['load_s']:.2f} s; dry run {found['dry_run_s']:.2f} s ({found['dry_run_total']}); peak {found['peak_rss_mb']:.0f} MB")
    for count in args.variants:
        if count:
            print(f"{count} variants / none: load {results[count]['load_s'] / results[0]['load_s']:.2f}x, "
                  f"dry run {results[count]['dry_run_s'] / results[0]['dry_run_s']:.2f}x")


if __name__ == "__main__":
    main()
