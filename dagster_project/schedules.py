"""The jobs the sensor, the nightly refresh and the backfill command run, what the
instance recorded per character, and the nightly refresh itself.

A refresh asks for missing or stale partitions only, one stage per character at a
time: the chain (spec, references, dataset, LoRA), then its poses (pose images and
sprites), then the sprite sheet. A pose never runs while its chain is stale (it would
be made with the old LoRA). The stage that follows a finished one is requested by
``character_library_sensor`` on its next tick; without the sensor, by the next
night's refresh. Nothing fresh is requested, and the journal makes any rerun $0.

Dagster gives a schedule one job, and each stage has its own partitions, so the
refresh is one schedule per job, all on the cron in ``FAL_ASSETS_REFRESH_CRON``
(read when the definitions load; default ``0 3 * * *``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from typing import Mapping

import dagster as dg

from fal_assets.plan import Recorded, Refresh, Seen, pose_runs, refresh_needed
from fal_assets.spec import CharacterSpec, pose_version, spec_version

from .partitions import LibraryPartitions, join
from .resources import CharacterLibrary

CRON_ENV = "FAL_ASSETS_REFRESH_CRON"
DEFAULT_CRON = "0 3 * * *"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
DATA_VERSION_TAG = "dagster/data_version"
CHARACTER_TAG = "fal_assets/character"  # on every run requested here: one character's runs
STAGE_TAG = "fal_assets/stage"
CHAIN = ("character_spec", "reference_images", "training_dataset", "character_lora")
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]

character_job = dg.define_asset_job(
    "character_job",
    selection=dg.AssetSelection.assets(*CHAIN),
    description="One character's chain: spec, reference images, training dataset, LoRA.",
)
poses_job = dg.define_asset_job(
    "poses_job",
    selection=dg.AssetSelection.assets("pose_images", "sprites"),
    description="Pose images and their sprites for a range of one character's poses.",
)
sheet_job = dg.define_asset_job(
    "sheet_job",
    selection=dg.AssetSelection.assets("sprite_sheet"),
    description="One character's sprite sheet from its sprites.",
)
cost_report_job = dg.define_asset_job(
    "cost_report_job", selection=dg.AssetSelection.assets("cost_report"), description="All spend, from the journal."
)


# --------------------------------------------------------------------------- instance state


def _latest(instance: dg.DagsterInstance, asset: str, partitions: set[str], read=None) -> dict[str, Seen]:
    """The latest materialization of each partition (two queries for any number)."""
    if not partitions:
        return {}
    key = dg.AssetKey(asset)
    ids = instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=partitions)
    versions: dict[str, str | None] = {}
    if read is not None and ids:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, storage_ids=list(ids.values())), limit=len(ids)
        ).records
        versions = {r.asset_materialization.partition: read(r.asset_materialization) for r in records}
    return {partition: Seen(order, versions.get(partition)) for partition, order in ids.items()}


def _data_version(materialization: dg.AssetMaterialization) -> str | None:
    return (materialization.tags or {}).get(DATA_VERSION_TAG)


def _metadata(field: str):
    def read(materialization: dg.AssetMaterialization) -> str | None:
        value = materialization.metadata.get(field)
        return None if value is None else str(getattr(value, "value", value))

    return read


def recorded_state(instance: dg.DagsterInstance, specs: Mapping[str, CharacterSpec]) -> dict[str, Recorded]:
    """What the instance holds for each character: latest materializations and the
    versions they recorded (character_spec and reference_images: their data version,
    the spec_version; pose_images: ``pose_version``; sprite_sheet: ``frames``)."""
    names = set(specs)
    keys = {join(name, pose) for name, spec in specs.items() for pose in spec.poses}
    per_character = {
        "spec": _latest(instance, "character_spec", names, _data_version),
        "references": _latest(instance, "reference_images", names, _data_version),
        "dataset": _latest(instance, "training_dataset", names),
        "lora": _latest(instance, "character_lora", names),
        "sheet": _latest(instance, "sprite_sheet", names, _metadata("frames")),
    }
    images = _latest(instance, "pose_images", keys, _metadata("pose_version"))
    cutouts = _latest(instance, "sprites", keys)
    state = {}
    for name, spec in specs.items():
        state[name] = Recorded(
            **{field: found.get(name) for field, found in per_character.items()},
            poses={p: images[join(name, p)] for p in spec.poses if join(name, p) in images},
            sprites={p: cutouts[join(name, p)] for p in spec.poses if join(name, p) in cutouts},
        )
    return state


def busy_characters(instance: dg.DagsterInstance, names) -> set[str]:
    """Characters with a run requested here that has not finished (queued or running)."""
    names = list(names)
    if not names:
        return set()
    records = instance.get_run_records(dg.RunsFilter(tags={CHARACTER_TAG: names}, statuses=UNFINISHED))
    return {r.dagster_run.tags.get(CHARACTER_TAG) for r in records}


# --------------------------------------------------------------------------- run requests


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def loaded(work: Refresh, parts: LibraryPartitions) -> tuple[Refresh, list[str]]:
    """``work`` without the poses the loaded definitions lack (a pose added since they
    loaded has no partition until the code location reloads), and those poses."""
    unknown = [p for p in work.poses if not parts.has(work.character, p)]
    if not unknown:
        return work, []
    return replace(work, poses=tuple(p for p in work.poses if p not in unknown)), unknown


def run_requests(work: Refresh, spec: CharacterSpec, recorded: Recorded, parts: LibraryPartitions, salt: str = "") -> list[dg.RunRequest]:
    """The runs for ``work``: the chain for the character, one run per neighbouring
    group of its poses (a range of its pose keys, which are contiguous and in the
    order the definitions loaded them), the sheet. Run keys carry the versions they
    make (and ``salt``), so the same request is never launched twice. Poses without a
    partition (see ``loaded``) are left out."""
    name = spec.name
    work, _ = loaded(work, parts)
    pose_order = parts.by_character.get(name, [])
    suffix = f":{salt}" if salt else ""
    out = []
    if work.chain:
        out.append(dg.RunRequest(
            job_name=character_job.name, partition_key=name,
            run_key=f"{name}:chain:{spec_version(spec)}{suffix}", tags={CHARACTER_TAG: name, STAGE_TAG: "chain"},
        ))
    for group in pose_runs(pose_order, spec.poses, work.poses):
        version = _digest([pose_version(spec, p) for p in group])
        key = f"{name}:poses:{group[0]}..{group[-1]}:{version}{suffix}"
        tags = {CHARACTER_TAG: name, STAGE_TAG: "poses"}
        if len(group) == 1:
            out.append(dg.RunRequest(job_name=poses_job.name, partition_key=join(name, group[0]), run_key=key, tags=tags))
        else:
            tags.update({RANGE_START: join(name, group[0]), RANGE_END: join(name, group[-1])})
            out.append(dg.RunRequest(job_name=poses_job.name, run_key=key, tags=tags))
    if work.sheet:
        made = _digest({p: recorded.sprites[p].order if p in recorded.sprites else None for p in spec.poses})
        out.append(dg.RunRequest(
            job_name=sheet_job.name, partition_key=name,
            run_key=f"{name}:sheet:{made}{suffix}", tags={CHARACTER_TAG: name, STAGE_TAG: "sheet"},
        ))
    return out


def stale_run_requests(instance: dg.DagsterInstance, specs: Mapping[str, CharacterSpec], parts: LibraryPartitions,
                       salt: str = "") -> tuple[list[dg.RunRequest], list[str]]:
    """Per character not busy: the runs of its first missing or stale stage; and why.
    A character or pose the loaded definitions lack waits for the next reload."""
    specs = {name: spec for name, spec in specs.items() if name in parts.by_character}
    state = recorded_state(instance, specs)
    busy = busy_characters(instance, specs)
    requests, notes = [], []
    for name, spec in specs.items():
        if name in busy:
            notes.append(f"{name}: a run is still queued or running; next time")
            continue
        work = refresh_needed(spec, state[name]).first_stage()
        if not work.empty:
            requests += run_requests(work, spec, state[name], parts, salt)
            notes.append(f"{name}: {'; '.join(work.reasons)}")
    return requests, notes


# --------------------------------------------------------------------------- the nightly refresh


def refresh_cron() -> str:
    return os.environ.get(CRON_ENV, "").strip() or DEFAULT_CRON


def _refresh(name: str, job: dg.UnresolvedAssetJobDefinition, what: str, parts: LibraryPartitions) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        cron_schedule=refresh_cron(),
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Nightly: {what} that are missing or stale (cron from ${CRON_ENV}).",
    )
    def refresh(context: dg.ScheduleEvaluationContext, characters: CharacterLibrary):
        specs, problems = characters.scan()
        for problem in problems:
            context.log.warning(f"skipped: {problem}")
        for name, lacking in parts.missing(specs).items():
            context.log.warning(f"{name}: no partitions yet for {', '.join(lacking)}; they run once the code location reloads")
        salt = context.scheduled_execution_time.strftime("%Y%m%dT%H%M") if context.scheduled_execution_time else ""
        requests, notes = stale_run_requests(context.instance, specs, parts, salt)
        mine = [r for r in requests if r.job_name == job.name]
        for note in notes:
            context.log.info(note)
        if not mine:
            return dg.SkipReason(f"no {what} missing or stale" + (f"; {len(problems)} spec problem(s), see the log" if problems else ""))
        return mine

    return refresh


def _cost_report_schedule() -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="refresh_cost_report",
        cron_schedule=refresh_cron(),
        job=cost_report_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Nightly: the cost report from the journal (cron from ${CRON_ENV}).",
    )


def build(parts: LibraryPartitions) -> list[dg.ScheduleDefinition]:
    """The four nightly refreshes over ``parts`` (the cron is read now)."""
    return [
        _refresh("refresh_character_chain", character_job, "character chains", parts),
        _refresh("refresh_poses", poses_job, "pose images and sprites", parts),
        _refresh("refresh_sprite_sheets", sheet_job, "sprite sheets", parts),
        _cost_report_schedule(),
    ]


JOBS = [character_job, poses_job, sheet_job, cost_report_job]
