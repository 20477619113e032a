"""Backfill from CI (or by hand): materialize characters against the instance at DAGSTER_HOME.

    python -m dagster_project.backfill [--character NAME ...] [--pose NAME ...] [--stale]
        [--changed-since GIT_REF] [--dry-run] [--profile draft|final]

Registers the specs' partitions, then per selected character runs, in order, the chain
(spec, references, dataset, LoRA), its poses (pose images and sprites; one run per
group of neighbouring poses) and its sprite sheet, then the cost report. The
resources are the code location's (``FAL_KEY`` set: the fal backend; else local).

``--character`` and ``--changed-since`` (specs changed since a git ref, by
``git diff --name-only REF``) narrow the characters; with neither, all. ``--pose``
narrows the poses. ``--stale`` runs only what is missing or stale in the instance
(the nightly refresh's rule). ``--dry-run`` runs nothing and prints, per character and
stage, the requests and their estimated cost (requests the journal already holds
as done at $0). Exit 0 when done, 1 when a run failed, 2 (one line per problem) on
bad input: an unknown character or pose or profile, an invalid spec, a bad git ref.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Mapping, Sequence

warnings.filterwarnings("ignore", message=r".*currently in (beta|preview)")

import dagster as dg  # noqa: E402

from fal_assets import references  # noqa: E402
from fal_assets.errors import FalAssetsError, InvalidInput  # noqa: E402
from fal_assets.plan import Refresh, by_stage, mark_cached, plan_character, pose_runs, refresh_needed, total_usd  # noqa: E402
from fal_assets.spec import CharacterSpec, scan_specs  # noqa: E402

from . import variant_runs  # noqa: E402
from .definitions import build_defs, graph  # noqa: E402
from .runs import QUIET, Runs, open_instance, spend_line, usd  # noqa: E402
from .partitions import join  # noqa: E402
from .schedules import CHAIN, CHARACTER_TAG, RANGE_END, RANGE_START, STAGE_TAG, recorded_state  # noqa: E402


class BadInput(Exception):
    """Input the command refuses (exit 2): one line per problem."""

    def __init__(self, lines: Sequence[str]):
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--character", action="append", default=[], metavar="NAME", help="only this character (repeatable)")
    parser.add_argument("--pose", action="append", default=[], metavar="NAME", help="only this pose (repeatable)")
    parser.add_argument("--stale", action="store_true", help="only what is missing or stale in the instance")
    parser.add_argument("--changed-since", metavar="GIT_REF", help="only characters whose spec changed since GIT_REF")
    parser.add_argument("--dry-run", action="store_true", help="print what would run and cost; run nothing")
    parser.add_argument("--profile", default="final", help="quality profile of the pose images (draft, final, or one the specs define)")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- selection


def changed_since(ref: str, folder: Path) -> list[str]:
    """Names of the files in ``folder`` that ``git diff --name-only REF`` lists (deleted ones too)."""
    proc = subprocess.run(
        ["git", "-C", str(folder), "diff", "--name-only", "--no-renames", "--relative", ref, "--", "."],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        why = next((line for line in proc.stderr.splitlines() if line.strip()), f"git exited {proc.returncode}")
        raise BadInput([f"--changed-since: {ref}: {why.strip()}"])
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def select(args: argparse.Namespace, folder: Path, allow_references_outside: bool = False) -> tuple[dict[str, CharacterSpec], list[str], list[str]]:
    """The chosen specs, the chosen poses (empty: all) and notes for the user. A chosen
    spec whose own reference images would fail the run is refused here, before any run."""
    specs, problems = scan_specs(folder, allow_references_outside=allow_references_outside)
    if problems:
        raise BadInput([str(p) for p in problems])
    notes: list[str] = []
    chosen = dict(specs)
    for name in args.character:
        if name not in specs:
            raise BadInput([f"--character: {name!r} is not a character; the specs in {folder} are: {', '.join(specs) or 'none'}"])
    if args.character:
        chosen = {n: s for n, s in chosen.items() if n in args.character}
    if args.changed_since:
        changed = [name for name in changed_since(args.changed_since, folder) if Path(name).suffix in (".yaml", ".yml")]
        by_file = {spec.source.name: name for name, spec in specs.items()}
        for file in changed:
            if file not in by_file and not (folder / file).exists():
                notes.append(f"{folder / file}: removed since {args.changed_since}; its partitions and files are kept")
        names = {by_file[f] for f in changed if f in by_file}
        chosen = {n: s for n, s in chosen.items() if n in names}
    for pose in args.pose:
        if not any(pose in spec.poses for spec in chosen.values()):
            known = sorted({p for spec in chosen.values() for p in spec.poses})
            raise BadInput([f"--pose: {pose!r} is not a pose of {', '.join(chosen) or 'the chosen characters'}; they have: {', '.join(known) or 'none'}"])
    if args.pose:
        chosen = {n: s for n, s in chosen.items() if any(p in s.poses for p in args.pose)}
    problems = [p for spec in chosen.values() for p in references.check(spec)]
    if problems:
        raise BadInput([str(p) for p in problems])
    for name, spec in chosen.items():
        try:
            spec.profile(args.profile)
        except InvalidInput as exc:
            raise BadInput([f"--profile: {exc.problems[0]}"]) from None
    return chosen, list(args.pose), notes


def work_for(spec: CharacterSpec, wanted_poses: list[str], stale: bool, recorded) -> Refresh:
    """All of a character (its chosen poses), or only what is missing or stale."""
    chosen = [p for p in spec.poses if not wanted_poses or p in wanted_poses]
    if stale:
        return refresh_needed(spec, recorded[spec.name], chosen)
    if not chosen:
        return Refresh(spec.name)
    return Refresh(spec.name, chain=True, poses=tuple(chosen), sheet=True, reasons=("asked for",))


# --------------------------------------------------------------------------- dry run


def describe(work: Refresh) -> str:
    parts = (["chain"] if work.chain else []) + ([f"poses {', '.join(work.poses)}"] if work.poses else []) + (["sprite_sheet"] if work.sheet else [])
    return "; ".join(parts) or "nothing (fresh)"


def dry_run(chosen: Mapping[str, CharacterSpec], works: Mapping[str, Refresh], profile: str, resources: Mapping,
            variant_works: Mapping[str, list] | None = None) -> int:
    store, fal = resources["store"], resources["fal"]
    grand, requests, cached = 0.0, 0, 0
    for name, spec in chosen.items():
        work, variants = works[name], (variant_works or {}).get(name, [])
        print(f"{name} ({spec.source}): {describe(work)}{variant_runs.describe(variants)}")
        if work.empty and not variants:
            continue
        plan = plan_character(spec, work.poses, profile, chain=work.chain, dataset_zip=store.path(name, "dataset.zip"),
                              lora_weights=store.path(name, "lora", "pytorch_lora_weights.safetensors"))
        plan += variant_runs.plan_for(spec, variants, profile, store)
        try:
            plan = mark_cached(plan, fal.settings(), key=fal.key)
        except FalAssetsError as exc:
            print(f"  (journal not checked: {exc})")
        for stage, row in by_stage(plan).items():
            note = f" ({row['cached']} cached at $0)" if row["cached"] else ""
            count = f"{row['requests']} request{'s' if row['requests'] != 1 else ''}"
            print(f"  {stage:<17} {count:<12} {', '.join(row['endpoints']):<28} {usd(row['usd'])}{note}")
        for line in variant_runs.by_variant_lines(plan):
            print(line)
        subtotal = total_usd(plan)
        print(f"  {name} total: {usd(subtotal)}")
        grand += subtotal
        requests += len(plan)
        cached += sum(p.cached for p in plan)
    print(f"total: {usd(round(grand, 6))} for {requests} requests ({cached} cached at $0); backend {fal.settings().backend}; nothing was run")
    return 0


# --------------------------------------------------------------------------- real run


def run_character(runs: Runs, spec: CharacterSpec, work: Refresh, profile: str, variants: list | None = None) -> bool:
    name = spec.name
    tags = {CHARACTER_TAG: name, "fal_assets/trigger": "backfill"}
    steps = []
    if work.chain:
        steps.append(("chain", list(CHAIN), {"partition_key": name}))
    pose_config = {**QUIET, "ops": {"pose_images": {"config": {"profile": profile}}}}
    for group in pose_runs(spec.poses, spec.poses, work.poses):
        if len(group) == 1:
            options = {"partition_key": join(name, group[0])}
        else:
            options = {"tags": {RANGE_START: join(name, group[0]), RANGE_END: join(name, group[-1])}}
        steps.append((f"poses {', '.join(group)}", ["pose_images", "sprites"], {**options, "run_config": pose_config}))
    if work.sheet:
        steps.append(("sprite_sheet", ["sprite_sheet"], {"partition_key": name}))
    steps += variant_runs.steps_for(spec, variants or [])
    for stage, selection, options in steps:
        options.setdefault("run_config", QUIET)
        step_tags = {**tags, STAGE_TAG: stage.split(" ")[0], **options.pop("tags", {})}
        if not runs.materialize(selection, step_tags, **options):
            print(f"{name}: {stage} failed (run {runs.ids[-1]}; `make dev` shows it)", file=sys.stderr)
            return False
        print(f"{name}: {stage} done")
    return True


def run(args: argparse.Namespace, resources: Mapping) -> int:
    folder = Path(resources["characters"].folder)
    chosen, wanted_poses, notes = select(args, folder, bool(getattr(resources["characters"], "allow_references_outside", False)))
    for note in notes:
        print(note, file=sys.stderr)
    if not chosen:
        print("nothing to do: no character selected")
        return 0
    store = resources["store"]
    if args.dry_run and not args.stale:
        works = {name: work_for(spec, wanted_poses, False, {}) for name, spec in chosen.items()}
        variants = {name: variant_runs.variant_work(spec, wanted_poses, works[name].poses, False) for name, spec in chosen.items()}
        return dry_run(chosen, works, args.profile, resources, variants)
    with open_instance() as instance:
        recorded = recorded_state(instance, chosen) if args.stale else {}
        works = {name: work_for(spec, wanted_poses, args.stale, recorded) for name, spec in chosen.items()}
        recorded_v = variant_runs.recorded_variants(instance, chosen) if args.stale else {}
        variants = {name: variant_runs.variant_work(spec, wanted_poses, works[name].poses, args.stale, recorded_v.get(name),
                                                    store.path(name, "poses_raw")) for name, spec in chosen.items()}
        if args.dry_run:
            return dry_run(chosen, works, args.profile, resources, variants)
        runs = Runs(graph(build_defs(str(folder), {"characters": resources["characters"]})), instance, resources)
        failed = [name for name, spec in chosen.items()
                  if not (works[name].empty and not variants[name])
                  and not run_character(runs, spec, works[name], args.profile, variants[name])]
        if not runs.materialize(["cost_report"], {"fal_assets/trigger": "backfill"}, run_config=QUIET):
            failed.append("cost_report")
    print(spend_line(resources["fal"], runs.ids))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        for line in runs.failures:
            print(line, file=sys.stderr)  # the line that matters, last
        return 1
    return 0


def main(argv: Sequence[str] | None = None, resources: Mapping | None = None) -> int:
    args = parse(argv)
    if resources is None:
        from .definitions import defs

        resources = defs.resources
    try:
        return run(args, resources)
    except BadInput as exc:
        print("\n".join(exc.lines), file=sys.stderr)
        return 2
    except InvalidInput as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
