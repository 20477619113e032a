"""What a character's refresh will send and cost, and which of its parts are stale.

Pure rules, no Dagster: the sensor, the nightly refresh and the backfill command read
what the Dagster instance recorded into ``Recorded`` and ask ``refresh_needed`` what
to run; ``plan_character`` lists the requests a run would send with their estimates.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from .generate import Request, Settings, set_path
from .pricing import estimate
from .recipes import pose_request, reference_request, training_request
from .spec import CharacterSpec, pose_version, spec_version

STAGES = ("reference_images", "character_lora", "pose_images", "variant_images")  # the stages that send requests, in order


@dataclass(frozen=True)
class PlannedRequest:
    """One request a run would send: its stage (asset), endpoint, arguments and estimate.

    Files the request uploads (dataset zip, LoRA weights) appear in ``arguments`` as
    ``upload:<file name>``; ``request`` is the request itself, files included.
    """

    stage: str
    endpoint: str
    arguments: dict[str, Any]
    estimate_usd: float
    subject: str = ""  # the view or pose it is for
    cached: bool = False  # already completed in the journal: a rerun costs $0
    request: Request | None = field(default=None, compare=False, repr=False)

    @property
    def cost_usd(self) -> float:
        return 0.0 if self.cached else self.estimate_usd


def plan_character(
    spec: CharacterSpec,
    poses: Iterable[str] | None = None,
    profile: str = "final",
    *,
    chain: bool = True,
    dataset_zip: Path | None = None,
    lora_weights: Path | None = None,
) -> list[PlannedRequest]:
    """The requests a refresh of ``spec`` sends, each with its estimate.

    ``chain`` includes the reference images (none when the spec names its own folder)
    and the LoRA training; ``poses`` (default: all) are the pose images, with the
    ``profile``'s arguments. ``dataset_zip`` and ``lora_weights`` are where those files
    will be (needed only to look the requests up in the journal). An unknown pose or
    profile raises ``InvalidInput``.
    """
    wanted = list(spec.poses) if poses is None else list(dict.fromkeys(poses))
    for pose in wanted:
        spec.pose(pose)
    spec.profile(profile)
    planned: list[tuple[str, str, Request]] = []
    if chain:
        if spec.references_path is None:
            planned += [("reference_images", view, reference_request(spec, view)) for view in spec.views]
        planned.append(("character_lora", "", training_request(spec, Path(dataset_zip or "dataset.zip"))))
    weights = Path(lora_weights or "pytorch_lora_weights.safetensors")
    planned += [("pose_images", pose, pose_request(spec, pose, weights, profile)) for pose in wanted]
    return [_priced(stage, subject, request) for stage, subject, request in planned]


def _priced(stage: str, subject: str, request: Request) -> PlannedRequest:
    arguments = copy.deepcopy(request.arguments)
    for path, local in sorted(request.files.items()):
        set_path(arguments, path, f"upload:{Path(local).name}")
    cost = estimate(request.endpoint, arguments)
    return PlannedRequest(stage, cost.endpoint, arguments, cost.cost_usd, subject, request=request)


def total_usd(plan: Iterable[PlannedRequest]) -> float:
    """What the plan would cost: its estimates, cached requests at $0."""
    return round(sum(p.cost_usd for p in plan), 6)


def by_stage(plan: Iterable[PlannedRequest]) -> dict[str, dict[str, Any]]:
    """Per stage: requests, cached requests, endpoints and dollars (cached at $0)."""
    out: dict[str, dict[str, Any]] = {}
    for p in plan:
        row = out.setdefault(p.stage, {"requests": 0, "cached": 0, "endpoints": [], "usd": 0.0})
        row["requests"] += 1
        row["cached"] += p.cached
        if p.endpoint not in row["endpoints"]:
            row["endpoints"].append(p.endpoint)
        row["usd"] = round(row["usd"] + p.cost_usd, 6)
    return out


def mark_cached(plan: Sequence[PlannedRequest], settings: Settings, key: str | None = None) -> list[PlannedRequest]:
    """The plan with the requests the journal holds as completed marked ``cached``.

    Keys come from the generator itself (``Generator.prepare``, for ``settings``'
    backend), so they match what a run would look up. A request that uploads a file
    (dataset zip, LoRA weights) stays uncached when the file does not exist yet or an
    uncached request of an earlier stage will make it anew. Nothing is created:
    without a journal there, nothing is cached.
    """
    from .backends import make_backend
    from .generate import Generator
    from .journal import State
    from .store import ContentStore

    if not plan or (settings.journal_url is None and not (settings.store_root.parent / "journal.db").is_file()):
        return list(plan)
    options = {} if settings.backend == "local" else {"key": key}
    backend = make_backend(settings.backend, **options)
    journal = settings.journal()
    try:
        generator = Generator(backend, journal, ContentStore(settings.store_root), settings)
        marked, remade = [], set()  # stages with a request that will be sent again
        for p in plan:
            made_again = any(stage in remade for stage in STAGES[: STAGES.index(p.stage)])
            if p.request is None or (p.request.files and made_again) or not all(Path(f).is_file() for f in p.request.files.values()):
                marked.append(p)
                remade.add(p.stage)
                continue
            _, _, journal_key = generator.prepare(p.request)
            entry = journal.get(journal_key)
            done = entry is not None and entry.state == State.COMPLETED
            marked.append(replace(p, cached=done))
            if not done:
                remade.add(p.stage)
        return marked
    finally:
        journal.close()
        asyncio.run(backend.aclose())


# --------------------------------------------------------------------------- freshness


@dataclass(frozen=True)
class Seen:
    """The latest materialization of one partition: its place in the event log
    (``order``, larger is later) and the version it recorded, if any."""

    order: int
    version: str | None = None


@dataclass
class Recorded:
    """What the Dagster instance holds for one character; ``None`` = never materialized.

    Versions: ``spec`` and ``references`` record ``spec_version``; ``poses`` (pose
    images) record ``pose_version``; ``sheet`` records its frame count.
    """

    spec: Seen | None = None
    references: Seen | None = None
    dataset: Seen | None = None
    lora: Seen | None = None
    poses: dict[str, Seen] = field(default_factory=dict)
    sprites: dict[str, Seen] = field(default_factory=dict)
    sheet: Seen | None = None


@dataclass(frozen=True)
class Refresh:
    """What a character needs: the character chain (spec, references, dataset, LoRA),
    some poses (pose images and sprites), the sprite sheet; and why."""

    character: str
    chain: bool = False
    poses: tuple[str, ...] = ()
    sheet: bool = False
    reasons: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.chain or self.poses or self.sheet)

    def first_stage(self) -> "Refresh":
        """Only the stage that can run now: a pose waits for a fresh chain (else it would
        be made with the old LoRA), the sheet for fresh sprites."""
        if self.chain:
            return replace(self, poses=(), sheet=False)
        if self.poses:
            return replace(self, sheet=False)
        return self


def fresh_pose_versions(spec: CharacterSpec, pose: str, base: str | None = None) -> set[str]:
    """The pose versions a current pose image may carry: one per quality profile
    (``base``: the spec's ``spec_version``, when known)."""
    base = base or spec_version(spec)
    return {pose_version(spec, pose, profile, base=base) for profile in spec.profiles}


def refresh_needed(spec: CharacterSpec, recorded: Recorded, poses: Iterable[str] | None = None) -> Refresh:
    """What of ``spec`` is missing or stale in ``recorded`` (``poses`` limits the poses).

    The chain is stale when the spec's or the references' recorded ``spec_version``
    differs from the spec's, when a link was never made, or when the LoRA is older than
    the references (a chain that stopped half-way). A stale chain makes every pose and
    the sheet stale. A pose is stale when its image is missing or carries a version no
    profile of the spec gives, or its sprite is missing or older than its image. The
    sheet is stale when any of its poses is, when it is missing, older than a sprite,
    or holds another number of frames than the spec has poses.
    """
    current = spec_version(spec)
    wanted = list(spec.poses) if poses is None else [p for p in dict.fromkeys(poses) if p in spec.poses]
    why: list[str] = []
    for name, seen in (("character_spec", recorded.spec), ("reference_images", recorded.references),
                       ("training_dataset", recorded.dataset), ("character_lora", recorded.lora)):
        if seen is None:
            why.append(f"{name} never materialized")
    for name, seen in (("character_spec", recorded.spec), ("reference_images", recorded.references)):
        if seen is not None and seen.version != current:
            why.append(f"{name} is of spec version {seen.version}, the spec is now {current}")
    if recorded.lora and recorded.references and recorded.lora.order < recorded.references.order:
        why.append("character_lora is older than reference_images")
    if why:
        return Refresh(spec.name, chain=True, poses=tuple(wanted), sheet=True, reasons=tuple(why))

    stale = []
    for pose in wanted:
        image, sprite = recorded.poses.get(pose), recorded.sprites.get(pose)
        if image is None:
            reason = f"{pose}: pose_images never materialized"
        elif image.version not in fresh_pose_versions(spec, pose, current):
            reason = f"{pose}: pose image is of version {image.version}, not the spec's"
        elif sprite is None:
            reason = f"{pose}: sprites never materialized"
        elif sprite.order < image.order:
            reason = f"{pose}: sprite is older than its pose image"
        else:
            continue
        stale.append(pose)
        why.append(reason)
    sheet = recorded.sheet
    newest_sprite = max((s.order for p, s in recorded.sprites.items() if p in spec.poses), default=-1)
    if stale:
        sheet_reason = "sprite_sheet waits for its poses"
    elif sheet is None:
        sheet_reason = "sprite_sheet never materialized"
    elif sheet.order < newest_sprite:
        sheet_reason = "sprite_sheet is older than a sprite"
    elif sheet.version is not None and sheet.version != str(len(spec.poses)):
        sheet_reason = f"sprite_sheet holds {sheet.version} frames, the spec has {len(spec.poses)} poses"
    else:
        sheet_reason = None
    if sheet_reason:
        why.append(sheet_reason)
    return Refresh(spec.name, poses=tuple(stale), sheet=sheet_reason is not None, reasons=tuple(why))


def pose_runs(order: Sequence[str], spec_poses: Iterable[str], wanted: Iterable[str]) -> list[list[str]]:
    """``wanted`` poses grouped into runs of neighbours in the pose partition ``order``.

    A run over a range of character x pose keys covers every key between its ends, so
    a run never spans one of the character's own poses that is not wanted (keys of
    other characters' poses inside it are no-ops). Poses missing from ``order`` come last.
    """
    spec_poses = list(spec_poses)
    own, known = set(spec_poses), set(order)
    wanted_set = set(wanted) & own
    ordered = [p for p in order if p in own] + [p for p in spec_poses if p not in known]
    runs: list[list[str]] = []
    current: list[str] = []
    for pose in ordered:
        if pose in wanted_set:
            current.append(pose)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs
