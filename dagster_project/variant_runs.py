"""What the demo and the backfill command run and print for a character's variants."""

from __future__ import annotations

from pathlib import Path

from fal_assets.plan import total_usd
from fal_assets.variant_plan import plan_variants
from fal_assets.variants import poses_of

from .runs import usd
from .variant_partitions import join, sheet_key

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def variant_steps(spec, variants=None) -> list[tuple[str, list[str], dict]]:
    """Per variant: its poses (variant images and sprites) as one contiguous range of
    ``character/pose/variant`` keys, then its sheet."""
    from fal_assets.variant_plan import VariantRefresh

    names = list(spec.variants if variants is None else variants)
    return steps_for(spec, [VariantRefresh(spec.name, name, tuple(poses_of(spec, name)), True) for name in names])


def variant_line(spec, name: str, output: str) -> str:
    folder = Path(output) / spec.name / "variants" / name
    return (f"{spec.name} variant {name} ({len(poses_of(spec, name))} poses, {spec.variants[name].endpoint}): sprites "
            f"{folder / 'sprite_layers' / 'poses'}/, atlas {folder / 'sheet.png'} + sheet.json, Godot {folder / 'sheet.tres'}")


def variants_estimate(specs, profile: str = "final") -> tuple[int, float]:
    """How many edits the library's variants send, and what they would cost on fal."""
    plans = [plan_variants(spec, profile=profile) for spec in specs.values()]
    return sum(len(p) for p in plans), round(sum(total_usd(p) for p in plans), 2)


def estimate_line(specs, profile: str = "final") -> str:
    count, dollars = variants_estimate(specs, profile)
    if not count:
        return "variants: none in these specs"
    return f"variants: {count} edits of the base poses; on fal about {usd(dollars)} (included above)"


# --------------------------------------------------------------------------- backfill


def recorded_variants(instance, specs) -> dict:
    """What the instance holds for each character's variants (latest materializations,
    with the ``variant_version`` and ``input_sha256`` each variant image recorded)."""
    from fal_assets.plan import Seen
    from fal_assets.variant_plan import VariantRecorded, VariantSeen
    from fal_assets.variants import pairs

    from .schedules import _latest, _metadata

    keys = {join(name, pose, v) for name, spec in specs.items() for pose, v in pairs(spec)}
    sheets = {sheet_key(name, v) for name, spec in specs.items() for v in spec.variants}
    versions = _latest(instance, "variant_images", keys, _metadata("variant_version"))
    inputs = _latest(instance, "variant_images", keys, _metadata("input_sha256"))
    cutouts = _latest(instance, "variant_sprites", keys)
    made_sheets = _latest(instance, "variant_sheet", sheets, _metadata("frames"))
    state = {}
    for name, spec in specs.items():
        found = VariantRecorded()
        for pose, v in pairs(spec):
            key = join(name, pose, v)
            if key in versions:
                found.images[(pose, v)] = VariantSeen(versions[key].order, versions[key].version, inputs[key].version if key in inputs else None)
            if key in cutouts:
                found.sprites[(pose, v)] = Seen(cutouts[key].order)
        for v in spec.variants:
            if sheet_key(name, v) in made_sheets:
                found.sheets[v] = made_sheets[sheet_key(name, v)]
        state[name] = found
    return state


def base_hashes(spec, base_dir: Path) -> dict[str, str | None]:
    """Each base pose image's content hash (None when it is not made yet)."""
    from fal_assets.edit import base_image
    from fal_assets.variants import file_sha256

    out = {}
    for pose in spec.poses:
        path = base_image(base_dir, pose)
        out[pose] = file_sha256(path) if path else None
    return out


def variant_work(spec, wanted_poses, base_poses, stale: bool, recorded=None, base_dir: Path | None = None) -> list:
    """Per variant, what to run: every chosen pose and the sheet, or (``stale``) what is
    missing or stale, plus the variants of every base pose this backfill makes again."""
    from fal_assets.variant_plan import VariantRefresh, variants_needed

    chosen = [p for p in spec.poses if not wanted_poses or p in wanted_poses]
    if not stale:
        out = []
        for name in spec.variants:
            poses = tuple(p for p in poses_of(spec, name) if p in chosen)
            if poses:
                out.append(VariantRefresh(spec.name, name, poses, True, reasons=("asked for",)))
        return out
    needed = variants_needed(spec, recorded, base_hashes(spec, base_dir))
    out = []
    for work in needed:
        remade = [p for p in poses_of(spec, work.variant) if p in base_poses]
        poses = tuple(p for p in poses_of(spec, work.variant) if p in chosen and (p in work.poses or p in remade))
        if poses or work.sheet:
            out.append(VariantRefresh(spec.name, work.variant, poses, True, reasons=work.reasons))
    return out


def plan_for(spec, works, profile: str, store) -> list:
    """The edit requests ``works`` send, priced with the base images where they are."""
    wanted = {(p, w.variant) for w in works for p in w.poses}
    plan = plan_variants(spec, profile=profile, base_dir=store.path(spec.name, "poses_raw"),
                         lora_weights=store.path(spec.name, "lora", "pytorch_lora_weights.safetensors"))
    return [p for p in plan if tuple(p.subject.split("/", 1)) in wanted]


def steps_for(spec, works) -> list[tuple[str, list[str], dict]]:
    """Runs for ``works``: each variant's poses as one range (or single key), then its sheet."""
    steps = []
    for work in works:
        poses = list(work.poses)
        if poses:
            all_poses = poses_of(spec, work.variant)
            contiguous = all_poses[all_poses.index(poses[0]): all_poses.index(poses[-1]) + 1] == poses
            groups = [poses] if contiguous else [[p] for p in poses]
            for group in groups:
                if len(group) == 1:
                    options = {"partition_key": join(spec.name, group[0], work.variant)}
                else:
                    options = {"tags": {RANGE_START: join(spec.name, group[0], work.variant), RANGE_END: join(spec.name, group[-1], work.variant)}}
                steps.append((f"variant {work.variant} {', '.join(group)}", ["variant_images", "variant_sprites"], options))
        if work.sheet:
            steps.append((f"variant {work.variant} sheet", ["variant_sheet"], {"partition_key": sheet_key(spec.name, work.variant)}))
    return steps


def describe(works) -> str:
    """`` + variants neon_cyan (8 poses, sheet)`` for the dry run's headline."""
    parts = [f"{w.variant} ({len(w.poses)} poses{', sheet' if w.sheet else ''})" for w in works]
    return f"; variants {', '.join(parts)}" if parts else ""


def by_variant_lines(plan) -> list[str]:
    """The dry run's lines for each variant (under the ``variant_images`` stage)."""
    from fal_assets.variant_plan import by_variant

    lines = []
    for name, row in by_variant(plan).items():
        note = f" ({row['cached']} cached at $0)" if row["cached"] else ""
        count = f"{row['requests']} request{'s' if row['requests'] != 1 else ''}"
        lines.append(f"    {name:<15} {count:<12} {', '.join(row['endpoints']):<28} {usd(row['usd'])}{note}")
    return lines
