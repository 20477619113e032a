"""Asset checks: thin wrappers around the pure rules in ``fal_assets.quality``."""


import dagster as dg

from fal_assets import quality
from fal_assets.catalog import output_size

from . import meta
from .partitions import LibraryPartitions, split
from .resources import CharacterLibrary, StoreResource


def _result(problems: dict[str, list[str]], severity=dg.AssetCheckSeverity.ERROR, **extra) -> dg.AssetCheckResult:
    failing = {key: found for key, found in problems.items() if found}
    return dg.AssetCheckResult(
        passed=not failing,
        severity=severity,
        metadata={"checked": len(problems), "problems": dg.MetadataValue.json(failing), **extra},
    )


def build(parts: LibraryPartitions) -> list[dg.AssetChecksDefinition]:
    """The checks over ``parts`` (per character and per real pose pair)."""

    @dg.asset_check(asset="training_dataset", partitions_def=parts.characters, blocking=True)
    def dataset_rules(context: dg.AssetCheckExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.AssetCheckResult:
        """9-50 images of at least 1024 px, each with a caption holding the trigger word."""
        found = {}
        for character in context.partition_keys:
            spec = characters.spec(character)
            found[character] = quality.dataset_problems(store.pull(character, "dataset.zip"), spec.trigger_word)
        return _result(found)

    @dg.asset_check(asset="character_lora", partitions_def=parts.characters, blocking=True)
    def lora_weights_present(context: dg.AssetCheckExecutionContext, store: StoreResource) -> dg.AssetCheckResult:
        """The weights file is kept, parses as safetensors, and matches its recorded hash."""
        found, hashes = {}, {}
        for character in context.partition_keys:
            weights = store.pull(character, "lora", "pytorch_lora_weights.safetensors")
            recorded = _recorded(context, "character_lora", character, "weights_sha256")
            found[character] = quality.lora_problems(weights, recorded)
            hashes[character] = meta.file_sha(weights) if weights.is_file() else None
        return _result(found, sha256=dg.MetadataValue.json(hashes))

    @dg.asset_check(asset="pose_images", partitions_def=parts.poses, blocking=True)
    def pose_image_valid(context: dg.AssetCheckExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.AssetCheckResult:
        """Each pose image decodes, has the asked size, is not blank and was not flagged."""
        found = {}
        for character in {split(key)[0] for key in context.partition_keys}:
            store.pull(character, "poses_raw")
        for key in context.partition_keys:
            character, pose = split(key)
            spec = characters.spec(character)
            path = meta.existing(store.path(character, "poses_raw"), pose)
            if path is None:
                found[key] = ["no pose image"]
                continue
            found[key] = quality.image_problems(path, None) + _size_problem(path, spec)
        return _result(found)

    @dg.asset_check(asset="sprites", partitions_def=parts.poses)
    def sprite_transparency(context: dg.AssetCheckExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.AssetCheckResult:
        """Real transparency: alpha coverage within bounds and the subject not cut at the border."""
        found = {}
        for key in context.partition_keys:
            character, pose = split(key)
            path = store.pull(character, "cutouts", f"{pose}.png")
            found[key] = quality.sprite_problems(path) if path.is_file() else ["no sprite"]
        return _result(found)

    @dg.asset_check(asset="sprites", partitions_def=parts.poses)
    def palette_adherence(context: dg.AssetCheckExecutionContext, characters: CharacterLibrary, store: StoreResource) -> dg.AssetCheckResult:
        """Each hex code of the spec's palette appears in the sprite (within a tolerance)."""
        found = {}
        for key in context.partition_keys:
            character, pose = split(key)
            spec = characters.spec(character)
            path = store.pull(character, "cutouts", f"{pose}.png")
            if path.is_file():
                misses = quality.palette_misses(path, dict(spec.palette))
                found[key] = [f"{part} ({spec.palette[part]}) not found; nearest is {d} away" for part, d in misses.items()]
        return _result(found, severity=dg.AssetCheckSeverity.WARN)

    return [dataset_rules, lora_weights_present, pose_image_valid, sprite_transparency, palette_adherence]


def _size_problem(path, spec) -> list[str]:
    """The image has the size one of the spec's quality profiles asks for."""
    from fal_assets.media import image_size_of

    size = image_size_of(path.read_bytes())
    allowed = {tuple(output_size(spec.models.pose, {"image_size": spec.profile(p)["image_size"]})) for p in spec.profiles}
    return [] if tuple(size) in allowed else [f"{path.name}: {size[0]}x{size[1]} is none of the profile sizes {sorted(allowed)}"]


def _recorded(context, asset: str, partition: str, field: str) -> str | None:
    """A metadata value of the partition's latest materialization."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get(field)
    return getattr(value, "value", None) if value is not None else None
