"""The character library sensor: a spec added to or changed in ``characters/`` becomes runs.

Each tick scans the specs folder (``scan_specs`` never raises) and asks, per
character, what is missing or stale in the instance (``fal_assets.plan.refresh_needed``): the chain first, its poses once the
chain is fresh (a pose made before its LoRA would use the old one), the sheet once
the sprites are. A palette change so reruns everything of that character, one pose's
description only that pose and the sheet. A character with a run still queued or
running waits for the next tick.

The cursor (JSON) remembers, per character, its ``spec_version``, ``pose_version``
per pose, its file, a generation (bumped on every change, part of the run keys, so
going back to an earlier spec runs again) and the run keys it requested: a request is
made once; a failed run is not retried until the spec changes or the nightly refresh.
A removed spec is reported, its files kept. An invalid spec is reported (file, field,
what is allowed) and skipped; the others go on.

Partitions are computed from the specs when the definitions load (``partitions.py``).
When a tick finds specs whose characters or poses differ from the loaded ones, it asks
the Dagster webserver to reload the code location (``reload.py``), once per change of
the library; what has no partition yet runs on the first tick after the reload.
"""

from __future__ import annotations

import json

import dagster as dg

from fal_assets.plan import refresh_needed
from fal_assets.spec import pose_version, spec_version

from .partitions import LibraryPartitions, extra_keys
from .reload import request_reload
from .resources import CharacterLibrary
from .schedules import busy_characters, character_job, loaded, poses_job, recorded_state, run_requests, sheet_job

KEPT_RUN_KEYS = 20  # per character


_VERSIONS: dict[int, tuple] = {}


def _versions(spec) -> dict:
    """The spec's versions, computed once per loaded spec (an unchanged file is the same
    object tick after tick: ``CharacterLibrary.scan`` caches by file version)."""
    kept = _VERSIONS.get(id(spec))
    if kept is None or kept[0] is not spec:
        base = spec_version(spec)
        kept = _VERSIONS[id(spec)] = (spec, {"spec_version": base, "poses": {p: pose_version(spec, p, base=base) for p in spec.poses}})
        if len(_VERSIONS) > 4096:
            _VERSIONS.pop(next(iter(_VERSIONS)))
    return kept[1]


def _change(before: dict, now: dict) -> str:
    """What changed between two remembered versions, in words."""
    if before.get("spec_version") != now["spec_version"]:
        return f"spec changed ({before.get('spec_version')} -> {now['spec_version']}): everything of it is stale"
    old, new = before.get("poses", {}), now["poses"]
    parts = []
    for label, names in (
        ("new pose", [p for p in new if p not in old]),
        ("removed pose", [p for p in old if p not in new]),
        ("changed pose", [p for p in new if p in old and old[p] != new[p]]),
    ):
        if names:
            parts.append(f"{label}{'s' if len(names) > 1 else ''} {', '.join(names)}")
    return "; ".join(parts)


def _remember(context, remembered: dict, spec) -> dict:
    """The cursor's entry for ``spec``: new, or updated (generation bumped) if it changed."""
    now = _versions(spec)
    entry = remembered.get(spec.name)
    if entry is None:
        context.log.info(f"{spec.name}: new spec {spec.source}")
        entry = remembered[spec.name] = {**now, "generation": 0, "requested": []}
    else:
        if entry.pop("removed", False):
            context.log.info(f"{spec.name}: spec is back ({spec.source})")
        change = _change(entry, now)
        if change:
            context.log.info(f"{spec.name}: {change}")
            entry.update(now, generation=entry.get("generation", 0) + 1)
    entry["file"] = str(spec.source)
    return entry


def _gone(context, remembered: dict, specs, problem_lines: list[str]) -> list[str]:
    """Notes on remembered characters without a valid spec now: invalid, or removed
    (reported once; partitions and files are kept)."""
    notes = []
    for name, entry in remembered.items():
        if name in specs:
            continue
        if any(line.startswith(f"{entry.get('file')}:") for line in problem_lines):
            notes.append(f"{name}: its spec is invalid, nothing runs for it until it is fixed")
        elif not entry.get("removed"):
            entry["removed"] = True
            message = f"{name}: spec {entry.get('file')} was removed; its files and run history are kept"
            context.log.warning(message)
            notes.append(message)
    return notes


def _library_change(parts: LibraryPartitions, specs, invalid: set[str]) -> str:
    """How the specs' characters and poses differ from the loaded partitions, in words.
    A spec that is invalid for now is no change: its partitions stay until it is fixed."""
    lines = [f"{name}: {', '.join(poses)}" for name, poses in parts.missing(specs).items()]
    gone = [name for name in parts.by_character if name not in specs and name not in invalid]
    gone += [f"{name}/{pose}" for name, spec in specs.items() if name in parts.by_character
             for pose in parts.by_character[name] if pose not in spec.poses]
    if parts.extras is not None:  # variants and animations have static partitions too
        now = extra_keys(specs)
        lines += sorted(now - parts.extras)
        gone += sorted(key for key in parts.extras - now if key.split(" ", 1)[1].split("/")[0] not in invalid)
    return "; ".join(([f"new: {'; '.join(lines)}"] if lines else []) + ([f"gone: {', '.join(gone)}"] if gone else []))


def build(parts: LibraryPartitions, reload=request_reload) -> dg.SensorDefinition:
    """The library sensor for definitions loaded with ``parts``; ``reload(location)``
    asks for a reload of the code location and says what it did."""

    @dg.sensor(
        name="character_library_sensor",
        jobs=[character_job, poses_job, sheet_job],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs what a new or changed character spec made missing or stale, in order: chain, poses, sheet; "
                    "reloads the code location when specs add or remove characters or poses.",
    )
    def character_library_sensor(context: dg.SensorEvaluationContext, characters: CharacterLibrary) -> dg.SensorResult:
        return _tick(context, characters, parts, reload)

    return character_library_sensor


def _tick(context, characters: CharacterLibrary, parts: LibraryPartitions, reload) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor else {}
    remembered: dict = state.setdefault("characters", {})
    specs, problems = characters.scan()
    notes: list[str] = []

    lines = [str(p) for p in problems]
    for line in lines:
        if line not in state.get("problems", []):
            context.log.warning(f"invalid spec skipped: {line}")
    state["problems"] = lines

    invalid = {name for name, entry in remembered.items() if name not in specs
               and any(line.startswith(f"{entry.get('file')}:") for line in lines)}
    change = _library_change(parts, specs, invalid)
    if change:
        if state.get("reload_for") != change:
            origin = context.code_location_origin
            done = reload(origin.location_name if origin else None)
            context.log.info(f"the specs changed the partitions ({change}): {done}")
            state["reload_for"] = change
        notes.append(f"partitions wait for a reload of the code location ({change})")
    else:
        state.pop("reload_for", None)

    instance = context.instance
    runnable = {name: spec for name, spec in specs.items() if name in parts.by_character}
    recorded = recorded_state(instance, runnable)
    busy = busy_characters(instance, runnable)
    requests: list[dg.RunRequest] = []
    for name, spec in specs.items():
        entry = _remember(context, remembered, spec)
        if name not in runnable:
            continue
        if name in busy:
            notes.append(f"{name}: waits for its queued or running runs")
            continue
        work, _ = loaded(refresh_needed(spec, recorded[name]).first_stage(), parts)
        if work.empty:
            continue
        wanted = run_requests(work, spec, recorded[name], parts, salt=f"g{entry['generation']}")
        fresh = [r for r in wanted if r.run_key not in entry["requested"]]
        if fresh:
            context.log.info(f"{name}: requesting {', '.join(r.run_key for r in fresh)} because {'; '.join(work.reasons)}")
            requests += fresh
            entry["requested"] = (entry["requested"] + [r.run_key for r in fresh])[-KEPT_RUN_KEYS:]
        else:
            notes.append(f"{name}: requested before: {', '.join(r.run_key for r in wanted)}")
    notes += _gone(context, remembered, specs, lines)
    notes += [f"invalid spec skipped: {line}" for line in lines]

    cursor = json.dumps(state, sort_keys=True)
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=cursor)
    return dg.SensorResult(skip_reason="; ".join(notes) or "no spec changed; nothing missing or stale", cursor=cursor)
