"""Typed materialization metadata: seeds, endpoints, request ids, dollars, previews."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import dagster as dg

from fal_assets.errors import GenerationFailed
from fal_assets.generate import Generation
from fal_assets.previews import inline_markdown, thumbnail_markdown

from .partitions import join

MV = dg.MetadataValue


def file_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def existing(folder: Path, stem: str) -> Path | None:
    for suffix in (".png", ".jpg", ".jpeg", ".webp"):
        path = Path(folder) / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def generation(gen: Generation) -> dict[str, Any]:
    """What every paid or generated materialization records."""
    data = {
        "seed": MV.int(int(gen.seed)) if gen.seed is not None else MV.text("none"),
        "endpoint": MV.text(gen.endpoint),
        "request_id": MV.text(gen.request_id or ""),
        "cost_usd": MV.float(float(gen.cost_usd)),
        "cost_kind": MV.text(gen.cost_kind),
        "estimated_usd": MV.float(float(gen.estimate.get("cost_usd") or 0.0)),
        "cache_hit": MV.bool(gen.cache_hit),
        "backend": MV.text(gen.backend),
    }
    images = [f for f in gen.files if f.get("width")]
    if images:
        data["size"] = MV.text(f"{images[0]['width']}x{images[0]['height']}")
    return data


def gallery(paths: dict[str, Path], max_side: int = 96) -> str:
    return " ".join(thumbnail_markdown(path, alt=name, max_side=max_side) for name, path in paths.items())


def total(gens) -> dict[str, Any]:
    gens = list(gens)
    return {
        "cost_usd": MV.float(round(float(sum(g.cost_usd for g in gens)), 6)),
        "estimated_usd": MV.float(round(float(sum(float(g.estimate.get("cost_usd") or 0.0) for g in gens)), 6)),
        "cost_kind": MV.text("billed" if any(g.cost_kind == "billed" for g in gens) else "estimated"),
        "cache_hits": MV.int(sum(g.cache_hit for g in gens)),
        "requests": MV.int(len(gens)),
        "backend": MV.text(", ".join(sorted({g.backend for g in gens})) or "none"),
    }


def references(refs) -> dict[str, Any]:
    data = {
        "images": MV.int(len(refs.images)),
        "source": MV.text(refs.source),
        "folder": MV.path(str(refs.folder)),
        "preview": MV.md(inline_markdown(next(iter(refs.images.values())), alt="first reference")),
        "gallery": MV.md(gallery(refs.images)),
        **total(refs.generations.values()),
    }
    if refs.generations:
        data["seeds"] = MV.json({view: g.seed for view, g in refs.generations.items()})
        data["endpoint"] = MV.text(next(iter(refs.generations.values())).endpoint)
        data["request_ids"] = MV.json({view: g.request_id for view, g in refs.generations.items()})
    return data


def dataset(report) -> dict[str, Any]:
    return {
        "path": MV.path(str(report.zip_path)),
        "images": MV.int(report.count),
        "near_duplicates_dropped": MV.json(report.dropped),
        "sizes": MV.json({k: f"{w}x{h}" for k, (w, h) in report.sizes.items()}),
        "zip_sha256": MV.text(file_sha(report.zip_path)),
    }


def lora(made) -> dict[str, Any]:
    return {
        **generation(made.generation),
        "weights_path": MV.path(str(made.weights)),
        "weights_sha256": MV.text(file_sha(made.weights)),
        "weights_bytes": MV.int(made.weights.stat().st_size),
        "config_path": MV.path(str(made.config)) if made.config else MV.text("none"),
        "lora_url": MV.text(made.lora_url or "none"),
    }


def record_poses(context: dg.AssetExecutionContext, spec, poses: list[str], made: dict, version: Callable[[str], str]) -> None:
    """Per-partition metadata for one character's poses; raise if any pose failed
    (the others are journaled, so a rerun costs $0 for them)."""
    failures = []
    for pose in poses:
        key = join(spec.name, pose)
        outcome = made[pose]
        if isinstance(outcome, BaseException):
            failures.append(f"{spec.name}/{pose}: {outcome}")
            continue
        context.add_asset_metadata(
            {
                **generation(outcome.generation),
                "prompt": MV.text(outcome.prompt),
                "path": MV.path(str(outcome.path)),
                "pose_version": MV.text(version(pose)),
                "preview": MV.md(inline_markdown(outcome.path, alt=pose)),  # drawn in place in the UI
                "preview_large": MV.md(thumbnail_markdown(outcome.path, alt=pose)),  # behind "Show Markdown"
            },
            partition_key=key,
        )
    if failures:
        raise GenerationFailed("\n".join(failures))


def source_pose(instance: dg.DagsterInstance, keys: list[str], asset_name: str = "pose_images") -> dict[str, dict[str, Any]]:
    """Per key: the seed, request id and endpoint of the image a sprite is cut from (its
    latest ``asset_name`` materialization: ``pose_images``, or ``variant_images`` for a
    variant's sprites; two queries for any number of keys)."""
    asset = dg.AssetKey(asset_name)
    ids = instance.get_latest_storage_id_by_partition(asset, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions=set(keys))
    if not ids:
        return {}
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset, storage_ids=list(ids.values())), limit=len(ids)).records
    out = {}
    for record in records:
        found = record.asset_materialization.metadata
        copied = {f"source_{k}": found[k] for k in ("request_id", "endpoint") if k in found}
        if "seed" in found:
            copied["seed"] = found["seed"]  # the pose's seed: the sprite is that image, cut out
        out[record.asset_materialization.partition] = copied
    return out


def sprite(made) -> dict[str, Any]:
    from PIL import Image
    import numpy as np

    with Image.open(made.path) as image:
        image.load()
        alpha = np.asarray(image.getchannel("A"))
        size = image.size
    preview = inline_markdown(made.path, alt=made.pose)  # by the file's content: an unchanged sprite is not encoded again
    preview_large = thumbnail_markdown(made.path, alt=made.pose)
    details = {k: v for k, v in made.details.items() if isinstance(v, (str, int, float, bool))}
    return {
        "path": MV.path(str(made.path)),
        "method": MV.text(made.method),
        "cache_hit": MV.bool(bool(made.details.get("cache_hit"))),  # the same image, cutter and code: not cut again
        "cost_usd": MV.float(0.0),  # cut here, not on fal
        "backend": MV.text("local"),
        "details": MV.json(details),
        "size": MV.text(f"{size[0]}x{size[1]}"),
        "alpha_coverage": MV.float(round(float((alpha > 127).mean()), 4)),
        "preview": MV.md(preview),
        "preview_large": MV.md(preview_large),
    }


def sheet(made) -> dict[str, Any]:
    return {
        "atlas": MV.path(str(made.atlas_png)),
        "atlas_json": MV.path(str(made.atlas_json)),
        "godot": MV.path(str(made.godot)),
        "poses_folder": MV.path(str(made.poses_dir)),
        "frames": MV.int(len(made.poses)),
        "canvas": MV.text(f"{made.canvas[0]}x{made.canvas[1]}"),
        "atlas_size": MV.text(f"{made.atlas_size[0]}x{made.atlas_size[1]}"),
        "preview": MV.md(inline_markdown(made.contact_png, alt="contact sheet")),
        "preview_large": MV.md(thumbnail_markdown(made.contact_png, alt="contact sheet", max_side=640)),
    }


def _all_materializations(instance: dg.DagsterInstance, key: dg.AssetKey, page: int = 5000):
    cursor = None
    while True:
        result = instance.fetch_materializations(key, limit=page, cursor=cursor)
        yield from result.records
        if not result.has_more:
            return
        cursor = result.cursor


def cost_events(instance: dg.DagsterInstance, asset_names: list[str]) -> list[dict[str, Any]]:
    """Every materialization's recorded cost, from the event log."""
    events = []
    for name in asset_names:
        for record in _all_materializations(instance, dg.AssetKey(name)):
            found = record.asset_materialization.metadata
            if "cost_usd" in found:
                events.append({
                    "asset": name,
                    "partition": record.asset_materialization.partition,
                    "cost_usd": float(found["cost_usd"].value),
                    "cost_kind": found["cost_kind"].value if "cost_kind" in found else "estimated",
                    "timestamp": record.timestamp,
                })
    return events


def costs(report) -> dict[str, Any]:
    frame = report.by_group
    columns = [dg.TableColumn(str(c), "float" if frame[c].dtype.kind == "f" else "string") for c in frame.columns]
    rows = [dg.TableRecord({str(k): (float(v) if isinstance(v, float) else str(v)) for k, v in row.items()}) for row in frame.to_dict("records")]
    return {
        "table": MV.table(rows, schema=dg.TableSchema(columns)),
        "csv": MV.path(str(report.csv_path)),
        "billed_usd": MV.float(report.billed_usd),
        "estimated_usd": MV.float(report.estimated_usd),
        "budget": MV.json(report.budget),
        "event_log": MV.json(report.event_log or {}),
    }
