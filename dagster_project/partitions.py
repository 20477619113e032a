"""Partitions: characters and poses come from the specs in ``characters/``."""

import dagster as dg

characters = dg.DynamicPartitionsDefinition(name="characters")
poses = dg.DynamicPartitionsDefinition(name="poses")
character_pose = dg.MultiPartitionsDefinition({"character": characters, "pose": poses})

# A per-pose asset reads its character's per-character upstream through this mapping.
by_character = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="character")


def split(key: str) -> tuple[str, str]:
    """``glitch|idle`` -> ("glitch", "idle")."""
    parts = character_pose.get_partition_key_from_str(key).keys_by_dimension
    return parts["character"], parts["pose"]


def poses_by_character(keys) -> dict[str, list[str]]:
    """A run's character x pose keys grouped by character, in order."""
    grouped: dict[str, list[str]] = {}
    for key in keys:
        character, pose = split(key)
        grouped.setdefault(character, []).append(pose)
    return grouped


def join(character: str, pose: str) -> str:
    return str(dg.MultiPartitionKey({"character": character, "pose": pose}))
