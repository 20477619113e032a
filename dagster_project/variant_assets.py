"""Variant assets: each pose of each variant edited from the base pose image, cut out, and
put on the base sheet's canvas frame for frame (``fal_assets.edit``).

    pose_images -> variant_images -> variant_sprites -> variant_sheet <- sprite_sheet

Partitioned by the real character x pose x variant triples (``variant_partitions.py``);
one variant's poses run as one single-run range. Files under
``output/<character>/variants/<variant>/`` in the base's layout.
"""

import dagster as dg

from fal_assets import edit, pipeline, quality
from fal_assets.variants import palette_of, poses_of

from . import variant_meta
from .assets import OWNERS, stage
from .resources import CharacterLibrary, CutoutResource, FalResource, StoreResource
from .variant_partitions import VariantPartitions, poses_by_variant, split, split_sheet


def build(parts: VariantPartitions) -> list[dg.AssetsDefinition]:
    """The variant assets over ``parts`` (built even when no spec has variants, so jobs and
    selections that name them always resolve)."""
    per_variant = dict(partitions_def=parts.variants, backfill_policy=dg.BackfillPolicy.single_run(), owners=OWNERS)

    @dg.asset(
        deps=[dg.AssetDep("pose_images", partition_mapping=parts.from_poses),
              dg.AssetDep("character_spec", partition_mapping=parts.from_characters),
              dg.AssetDep("character_lora", partition_mapping=parts.from_characters)],
        **stage("variants"), kinds={"fal", "png"}, pool="fal", **per_variant,
    )
    def variant_images(context: dg.AssetExecutionContext, characters: CharacterLibrary, fal: FalResource, store: StoreResource):
        """Each pose of a variant: an edit of the base pose image (the instruction and the
        variant's palette), checked and priced before it is paid, journaled like every request."""
        for (character, variant), poses in poses_by_variant(context.partition_keys).items():
            spec = characters.spec(character)
            made = edit.variant_images(spec, variant, poses, store.path(character, "poses_raw"), store.path(character, "variants", variant, "poses_raw"),
                                       lambda r: fal.generate(context, r), lora_weights=store.path(character, "lora", "pytorch_lora_weights.safetensors"))
            variant_meta.record_images(context, spec, variant, made)
        return dg.MaterializeResult()

    @dg.asset(deps=["variant_images"], **stage("variants"), kinds={"rembg", "png"}, **per_variant)
    def variant_sprites(context: dg.AssetExecutionContext, cutout: CutoutResource, store: StoreResource):
        """The variant pose image with its background removed, by the base's cutter."""
        cutter = cutout.cutter()
        sources = variant_meta.source_images(context.instance, context.partition_keys)
        for key in context.partition_keys:
            character, pose, variant = split(key)
            folder = store.path(character, "variants", variant)
            if not (folder / "poses_raw" / f"{pose}.png").is_file():
                raise dg.Failure(f"{key}: no variant image in {folder / 'poses_raw'}; materialize variant_images first")
            made = pipeline.sprite(folder / "poses_raw" / f"{pose}.png", folder / "cutouts" / f"{pose}.png", cutter)
            context.add_asset_metadata(variant_meta.sprite(made, variant, sources.get(key, {})), partition_key=key)
        return dg.MaterializeResult()

    @dg.asset(
        partitions_def=parts.sheets,
        deps=[dg.AssetDep("variant_sprites", partition_mapping=parts.to_sheet), dg.AssetDep("sprite_sheet", partition_mapping=parts.from_base_sheet)],
        **stage("variants"), kinds={"png", "json"}, owners=OWNERS,
    )
    def variant_sheet(context: dg.AssetExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.MaterializeResult:
        """The variant's sprites on the base sheet's canvas, each where the base put that pose
        (same scale, pivot and baseline), with its atlas, Godot resource and contact sheet."""
        character, variant = split_sheet(context.partition_key)
        spec = characters.spec(character)
        folder = store.path(character, "variants", variant)
        made = edit.build_variant_sheet(spec, variant, folder / "cutouts", store.path(character), folder)
        published = store.publish(*made.poses.values(), made.atlas_png, made.atlas_json, made.godot, made.contact_png)
        return dg.MaterializeResult(metadata={**variant_meta.sheet(spec, made), **published})

    return [variant_images, variant_sprites, variant_sheet]


def checks(parts: VariantPartitions) -> list[dg.AssetChecksDefinition]:
    """The palette check against each variant's own palette, and frame-for-frame alignment."""

    @dg.asset_check(asset="variant_sprites", partitions_def=parts.variants)
    def variant_palette(context: dg.AssetCheckExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.AssetCheckResult:
        """Each hex code of the variant's palette (the character's with its overrides) appears in the sprite."""
        found = {}
        for key in context.partition_keys:
            character, pose, variant = split(key)
            palette = palette_of(characters.spec(character), variant)
            path = store.path(character, "variants", variant, "cutouts", f"{pose}.png")
            misses = quality.palette_misses(path, palette) if path.is_file() else {}
            found[key] = [f"{part} ({palette[part]}) not found; nearest is {d} away" for part, d in misses.items()]
        return _result(found, dg.AssetCheckSeverity.WARN)

    @dg.asset_check(asset="variant_sheet", partitions_def=parts.sheets)
    def variant_alignment(context: dg.AssetCheckExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.AssetCheckResult:
        """Same canvas and pivot as the base sheet for every pose, and the same silhouette."""
        found = {}
        for key in context.partition_keys:
            character, variant = split_sheet(key)
            poses = poses_of(characters.spec(character), variant)
            found[key] = edit.alignment_problems(store.path(character, "variants", variant), store.path(character), poses)
        return _result(found, dg.AssetCheckSeverity.ERROR)

    return [variant_palette, variant_alignment]


def _result(problems: dict[str, list[str]], severity) -> dg.AssetCheckResult:
    failing = {key: found for key, found in problems.items() if found}
    return dg.AssetCheckResult(passed=not failing, severity=severity,
                               metadata={"checked": len(problems), "problems": dg.MetadataValue.json(failing)})
