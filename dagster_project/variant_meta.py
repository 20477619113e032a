"""Typed metadata of the variant assets: what each edit sent, what it cost, a before/after."""

from __future__ import annotations

from typing import Any

import dagster as dg

from fal_assets.errors import GenerationFailed
from fal_assets.previews import thumbnail_markdown
from fal_assets.variants import palette_of, variant_version

from . import meta
from .variant_partitions import join

MV = dg.MetadataValue


def image(spec, made) -> dict[str, Any]:
    """One variant pose image: the generation's seed, endpoint, request id and cost, the
    megapixels billed in and out, the input image's hash and size, and base -> variant."""
    estimate = made.generation.estimate
    return {
        **meta.generation(made.generation),
        "variant": MV.text(made.variant),
        "prompt": MV.text(made.prompt),
        "path": MV.path(str(made.path)),
        "variant_version": MV.text(variant_version(spec, made.pose, made.variant)),
        "input_path": MV.path(str(made.input_path)),
        "input_sha256": MV.text(made.input_sha256),
        "input_size": MV.text(f"{made.input_size[0]}x{made.input_size[1]}"),
        "output_size": MV.text(f"{made.output_size[0]}x{made.output_size[1]}"),
        "conformed": MV.bool(made.conformed),  # brought back onto the base image's frame
        "billed_mp_in": MV.int(int(estimate.get("billed_mp_in") or 0)),
        "billed_mp_out": MV.int(int(estimate.get("billed_mp_out") or 0)),
        "price_unit": MV.text(str(estimate.get("unit") or "")),
        "preview": MV.md(f"{thumbnail_markdown(made.input_path, alt='base')} {thumbnail_markdown(made.path, alt=made.variant)}"),
    }


def record_images(context: dg.AssetExecutionContext, spec, variant: str, made: dict) -> None:
    """Per-partition metadata for one variant's poses; raise if any failed (the others are
    journaled, so a rerun costs $0 for them)."""
    failures = []
    for pose, outcome in made.items():
        if isinstance(outcome, BaseException):
            failures.append(f"{spec.name}/{pose}/{variant}: {outcome}")
            continue
        context.add_asset_metadata(image(spec, outcome), partition_key=join(spec.name, pose, variant))
    if failures:
        raise GenerationFailed("\n".join(failures))


def source_images(instance: dg.DagsterInstance, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Per triple key: the seed, request id and endpoint of the variant image a sprite is
    cut from (its latest ``variant_images`` materialization)."""
    return meta.source_pose(instance, keys, "variant_images")


def sprite(made, variant: str, source: dict) -> dict[str, Any]:
    return {**meta.sprite(made), "variant": MV.text(variant), **source}


def sheet(spec, made) -> dict[str, Any]:
    return {
        **meta.sheet(made),
        "variant": MV.text(made.variant),
        "palette": MV.json(palette_of(spec, made.variant)),
        "pivots": MV.json({pose: list(p) for pose, p in made.pivots.items()}),
        "warnings": MV.json(list(made.warnings)),
    }
