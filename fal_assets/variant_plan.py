"""What a character's variants will send and cost, and which of them are stale.

Pure rules, no Dagster, in the shape of ``plan.py``: ``plan_variants`` lists the edit
requests with their estimates (stage ``variant_images``, subject ``<pose>/<variant>``);
``variants_needed`` says which variant poses and sheets are missing or stale from what
the instance recorded (``VariantRecorded``) and the base images' content hashes.

Staleness: a variant pose image is stale when it was never made, when its recorded
``variant_version`` is not the spec's (its instruction, palette, endpoint, seed or
references changed: that variant only), or when the base pose image it was edited from
is not the current one (its recorded ``input_sha256`` differs: every variant of that
pose). Its sprite is stale when older than its image; a variant sheet when a pose of it
is stale, it is missing, older than a sprite, or holds another number of frames.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .generate import set_path
from .plan import PlannedRequest, Seen
from .pricing import estimate
from .spec import CharacterSpec
from .variants import base_size, pairs, variant_request, variant_version

STAGE = "variant_images"


def _size_of(path: Path) -> tuple[int, int] | None:
    if not Path(path).is_file():
        return None
    from .media import image_size_of

    return tuple(image_size_of(Path(path).read_bytes()))  # type: ignore[return-value]


def plan_variants(
    spec: CharacterSpec,
    poses: Iterable[str] | None = None,
    variants: Iterable[str] | None = None,
    profile: str = "final",
    *,
    base_dir: Path | None = None,
    lora_weights: Path | None = None,
) -> list[PlannedRequest]:
    """The edit requests of ``spec``'s variants (``poses`` / ``variants`` narrow them),
    each priced with the base image's size (the file in ``base_dir`` when it is there,
    else the size ``profile`` gives the pose images). An unpriced endpoint raises
    ``InvalidInput``: nothing is ever estimated at $0 for want of a price."""
    wanted_poses = None if poses is None else set(poses)
    wanted = None if variants is None else set(variants)
    planned = []
    fallback = base_size(spec, profile)
    weights = Path(lora_weights or "pytorch_lora_weights.safetensors")
    for pose, name in pairs(spec):
        if (wanted_poses is not None and pose not in wanted_poses) or (wanted is not None and name not in wanted):
            continue
        base = Path(base_dir or ".") / f"{pose}.png"
        size = _size_of(base) or fallback
        request = variant_request(spec, pose, name, base, size=size, lora_weights=weights)
        arguments = copy.deepcopy(request.arguments)
        for slot, local in sorted(request.files.items()):
            set_path(arguments, slot, f"upload:{Path(local).name}")
        references = [path for slot, path in sorted(request.files.items()) if slot.startswith("image_urls.") and slot != "image_urls.0"]
        inputs = [size] + [_size_of(path) or size for path in references]
        cost = estimate(request.endpoint, arguments, input_sizes=inputs)
        planned.append(PlannedRequest(STAGE, cost.endpoint, arguments, cost.cost_usd, f"{pose}/{name}", request=request))
    return planned


def by_variant(plan: Iterable[PlannedRequest]) -> dict[str, dict[str, Any]]:
    """Per variant: requests, cached requests, endpoints and dollars (cached at $0)."""
    out: dict[str, dict[str, Any]] = {}
    for p in plan:
        if p.stage != STAGE:
            continue
        name = p.subject.split("/", 1)[1]
        row = out.setdefault(name, {"requests": 0, "cached": 0, "endpoints": [], "usd": 0.0})
        row["requests"] += 1
        row["cached"] += p.cached
        if p.endpoint not in row["endpoints"]:
            row["endpoints"].append(p.endpoint)
        row["usd"] = round(row["usd"] + p.cost_usd, 6)
    return out


# --------------------------------------------------------------------------- freshness


@dataclass(frozen=True)
class VariantSeen:
    """The latest variant pose image: its place in the event log, its ``variant_version``
    and the content hash of the base pose image it was edited from."""

    order: int
    version: str | None = None
    input_sha256: str | None = None


@dataclass
class VariantRecorded:
    """What the instance holds for one character's variants; keys ``(pose, variant)``."""

    images: dict[tuple[str, str], VariantSeen] = field(default_factory=dict)
    sprites: dict[tuple[str, str], Seen] = field(default_factory=dict)
    sheets: dict[str, Seen] = field(default_factory=dict)  # version: its frame count


@dataclass(frozen=True)
class VariantRefresh:
    """What one variant needs: some poses (images and sprites), its sheet; and why.
    ``waiting`` poses have no base image yet (the base poses run first)."""

    character: str
    variant: str
    poses: tuple[str, ...] = ()
    sheet: bool = False
    waiting: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.poses or self.sheet)


def variants_needed(spec: CharacterSpec, recorded: VariantRecorded, base_sha256: dict[str, str | None]) -> list[VariantRefresh]:
    """Per variant of ``spec``: what is missing or stale (see the module doc).
    ``base_sha256`` is each base pose image's current content hash (None: not made yet)."""
    out = []
    for name in spec.variants:
        stale, waiting, why = [], [], []
        poses = [pose for pose, v in pairs(spec) if v == name]
        for pose in poses:
            image, sprite = recorded.images.get((pose, name)), recorded.sprites.get((pose, name))
            base = base_sha256.get(pose)
            if base is None:
                reason = f"{pose}/{name}: waits for its base pose image"
                waiting.append(pose)
            elif image is None:
                reason = f"{pose}/{name}: variant_images never materialized"
            elif image.version != variant_version(spec, pose, name):
                reason = f"{pose}/{name}: variant is of version {image.version}, the spec's is {variant_version(spec, pose, name)}"
            elif image.input_sha256 != base:
                reason = f"{pose}/{name}: edited from another base pose image than the current one"
            elif sprite is None:
                reason = f"{pose}/{name}: variant_sprites never materialized"
            elif sprite.order < image.order:
                reason = f"{pose}/{name}: sprite is older than its variant image"
            else:
                continue
            stale.append(pose)
            why.append(reason)
        sheet = recorded.sheets.get(name)
        newest = max((s.order for (p, v), s in recorded.sprites.items() if v == name and p in poses), default=-1)
        if stale:
            sheet_reason = "variant_sheet waits for its poses"
        elif sheet is None:
            sheet_reason = "variant_sheet never materialized"
        elif sheet.order < newest:
            sheet_reason = "variant_sheet is older than a sprite"
        elif sheet.version is not None and sheet.version != str(len(poses)):
            sheet_reason = f"variant_sheet holds {sheet.version} frames, the variant has {len(poses)} poses"
        else:
            sheet_reason = None
        if sheet_reason:
            why.append(sheet_reason)
        runnable = tuple(p for p in stale if p not in waiting)
        out.append(VariantRefresh(spec.name, name, runnable, sheet_reason is not None, tuple(waiting), tuple(why)))
    return out
