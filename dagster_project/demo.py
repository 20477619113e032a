"""``make demo``: the whole graph for every example character, offline, for $0.

Keeps its Dagster instance in ``.dagster/`` (so ``dagster dev`` shows the history)
and its files in ``output/``. Ends by printing where the sprites are and what the
run would have cost on fal.
"""

import os
import sys
from pathlib import Path

import dagster as dg

from fal_assets.errors import InvalidInput
from fal_assets.plan import plan_character, total_usd
from fal_assets.spec import load_specs

from .definitions import build_defs, graph
from .partitions import join
from .resources import CharacterLibrary, CutoutResource, FalResource, StoreResource
from .runs import QUIET, Runs, open_instance, spend_line
from .schedules import CHAIN
from . import variant_runs

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def pose_range(spec) -> dict[str, str]:
    """The tags of a run over one character's poses: a contiguous range of pose keys."""
    poses = list(spec.poses)
    return {RANGE_START: join(spec.name, poses[0]), RANGE_END: join(spec.name, poses[-1])}


def fal_for(backend: str, workdir: str, journal_url: str | None = None) -> FalResource:
    """The demo runs offline; ``backend="fal"`` (fal.ai or the emulator) takes the key
    from the environment through ``dg.EnvVar`` only."""
    if backend == "fal":
        return FalResource(backend="fal", api_key=dg.EnvVar("FAL_KEY"), workdir=workdir, concurrency=4, journal_url=journal_url)
    return FalResource(backend="local", workdir=workdir, journal_url=journal_url)


def fal_estimate(specs, profile: str) -> float:
    """What a full run of ``specs`` would cost on fal at today's prices (nothing cached),
    variants and animations included (an unpriced animation is left out and named by ``animation_line``)."""
    from fal_assets.animation import character_estimate

    return round(sum(total_usd(plan_character(spec, profile=profile)) + character_estimate(spec, profile)[0] for spec in specs.values())
                 + variant_runs.variants_estimate(specs, profile)[1], 2)


def animation_steps(spec, profile: str) -> list:
    """The demo's runs for a character's animations: frames and sprites as one range, then the sheet."""
    if not spec.animations:
        return []
    names = list(spec.animations)
    tags = {RANGE_START: join(spec.name, names[0]), RANGE_END: join(spec.name, names[-1])}
    config = {**QUIET, "ops": {"animation_frames": {"config": {"profile": profile}}}}
    return [(f"{len(names)} animations", ["animation_frames", "animation_sprites"], {"tags": tags, "run_config": config}),
            ("animated sheet", ["animated_sheet"], {"partition_key": spec.name})]


def animation_line(spec, character: Path) -> str:
    from fal_assets.animation import character_estimate, summary_line

    made = summary_line(spec, {n: character / "animations" / n / "frames" for n in spec.animations})
    _, refused = character_estimate(spec)
    line = (f"{spec.name}: animations {made}; atlas {character / 'animations.png'} + animations.json + animations.aseprite.json, "
            f"Godot {character / 'animations.tres'}, previews {character / 'animations'}/*.gif")
    return line + "".join(f"; {name}: not priced ({why})" for name, why in refused.items())


def run(folder: str = "characters", output: str = "output", workdir: str = ".fal-assets", profile: str = "final", backend: str = "local",
        journal_url: str | None = None) -> int:
    try:
        specs = load_specs(folder)
    except InvalidInput as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    resources = {
        "fal": fal_for(backend, workdir, journal_url),
        "store": StoreResource(root=output),
        "cutout": CutoutResource(),
        "characters": CharacterLibrary(folder=folder),
    }
    where = "the local backend (offline, $0)" if backend == "local" else "the fal backend (fal.ai or the emulator FAL_QUEUE_RUN_HOST names)"
    print(f"demo: {len(specs)} characters ({', '.join(specs)}) on {where}; files in {output}/, "
          f"run history in {os.environ.get('DAGSTER_HOME', '.dagster')}", flush=True)
    with open_instance() as instance:
        runs = Runs(graph(build_defs(folder)), instance, resources)
        for name, spec in specs.items():
            steps = [
                ("chain", list(CHAIN), {"partition_key": name}),
                (f"{len(spec.poses)} poses", ["pose_images", "sprites"], {"tags": pose_range(spec),
                 "run_config": {**QUIET, "ops": {"pose_images": {"config": {"profile": profile}}}}}),
                ("sheet", ["sprite_sheet"], {"partition_key": name}),
                *variant_runs.variant_steps(spec),
                *animation_steps(spec, profile),
            ]
            for stage, selection, options in steps:
                options.setdefault("run_config", QUIET)
                if not runs.materialize(selection, options.pop("tags", {}), **options):
                    print(f"demo: {name}: {stage} failed (run {runs.ids[-1]}; `make dev` shows it)", file=sys.stderr)
                    print(runs.failures[-1], file=sys.stderr)
                    return 1
            character = Path(output) / name
            print(f"{name}: sprites {character / 'sprite_layers' / 'poses'}/, atlas {character / 'sheet.png'} + sheet.json, "
                  f"Godot {character / 'sheet.tres'}, contact sheet {character / 'contact_sheet.png'}", flush=True)
            for variant in spec.variants:
                print(variant_runs.variant_line(spec, variant, output), flush=True)
            if spec.animations:
                print(animation_line(spec, character), flush=True)
        runs.materialize(["cost_report"], {}, run_config=QUIET)
    print(spend_line(resources["fal"], runs.ids))
    print(f"on fal, this library would cost about ${fal_estimate(specs, profile):.2f} for a full run "
          f"(costs so far: {Path(output) / '_reports' / 'cost_report.csv'})")
    print(variant_runs.estimate_line(specs, profile))
    print("next: `make dev` opens the Dagster UI at http://127.0.0.1:3000 (assets, seeds, costs, previews)")
    return 0


if __name__ == "__main__":
    sys.exit(run())
