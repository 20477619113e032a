"""``make demo``: the whole graph for every example character, offline, for $0.

Keeps its Dagster instance in ``.dagster/`` (so ``dagster dev`` shows the history)
and its files in ``output/``. Ends by printing where the sprites are and what the
run would have cost on fal.
"""

import os
import sys
from pathlib import Path

import dagster as dg

from fal_assets.costs import cost_report
from fal_assets.errors import InvalidInput
from fal_assets.generate import Settings
from fal_assets.spec import load_specs

from .definitions import build_defs, graph
from .partitions import join
from .resources import CharacterLibrary, CutoutResource, FalResource, StoreResource

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the full event log is in `dagster dev`


def pose_range(spec) -> dict[str, str]:
    """The tags of a run over one character's poses: a contiguous range of pose keys."""
    poses = list(spec.poses)
    return {RANGE_START: join(spec.name, poses[0]), RANGE_END: join(spec.name, poses[-1])}


def quiet_instance_home(home: Path) -> None:
    """A dagster.yaml for the demo's instance: no telemetry, nothing else changed."""
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")


def fal_for(backend: str, workdir: str, journal_url: str | None = None) -> FalResource:
    """The demo runs offline; ``backend="fal"`` (fal.ai or the emulator) takes the key
    from the environment through ``dg.EnvVar`` only."""
    if backend == "fal":
        return FalResource(backend="fal", api_key=dg.EnvVar("FAL_KEY"), workdir=workdir, concurrency=4, journal_url=journal_url)
    return FalResource(backend="local", workdir=workdir, journal_url=journal_url)


def run(folder: str = "characters", output: str = "output", workdir: str = ".fal-assets", profile: str = "final", backend: str = "local",
        journal_url: str | None = None) -> int:
    os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster").absolute()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    quiet_instance_home(Path(os.environ["DAGSTER_HOME"]))
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
    everything = graph(build_defs(folder))
    with dg.DagsterInstance.get() as instance:
        for name, spec in specs.items():
            steps = [
                (["character_spec", "reference_images", "training_dataset", "character_lora"], {"partition_key": name}),
                (["pose_images", "sprites"], {"tags": pose_range(spec),
                                              "run_config": {**QUIET, "ops": {"pose_images": {"config": {"profile": profile}}}}}),
                (["sprite_sheet"], {"partition_key": name}),
            ]
            for selection, options in steps:
                options.setdefault("run_config", QUIET)
                result = dg.materialize(everything, selection=selection, instance=instance, resources=resources, **options)
                if not result.success:
                    print(f"demo: {name}: {', '.join(selection)} failed; see `dagster dev` for the run", file=sys.stderr)
                    return 1
            print(f"{name}: sprites in {Path(output) / name / 'sprite_layers' / 'poses'}, sheet {Path(output) / name / 'sheet.png'}")
        dg.materialize(everything, selection=["cost_report"], instance=instance, resources=resources, run_config=QUIET)
    journal = Settings(store_root=Path(workdir) / "store", journal_url=journal_url).journal()
    report = cost_report(journal)
    journal.close()
    print(
        f"billed: ${report.billed_usd:.2f} ({'local backend, offline' if backend == 'local' else 'fal backend'}). "
        f"The same run on fal would cost about ${report.estimated_usd:.2f} "
        f"(see {Path(output) / '_reports' / 'cost_report.csv'})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())
