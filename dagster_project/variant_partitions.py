"""Variant partitions: exactly the character x pose x variant triples the specs ask for.

Per-variant-pose assets (``variant_images``, ``variant_sprites``) are partitioned by
``variants``, one key ``<character>/<pose>/<variant>`` per pose a variant covers, grouped
by character and then by variant (one variant's poses are one contiguous range, as one
character's poses are in ``poses``). ``variant_sheet`` is partitioned by ``sheets``, one
key ``<character>/<variant>``. Static, from the specs that load cleanly, joined to the
base partitions by ``StaticPartitionMapping`` only (see ``partitions.py`` for why).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import dagster as dg

from .partitions import SEPARATOR
from .partitions import join as join_pose


def join(character: str, pose: str, variant: str) -> str:
    """("glitch", "idle", "neon") -> ``glitch/idle/neon``."""
    return SEPARATOR.join((character, pose, variant))


def split(key: str) -> tuple[str, str, str]:
    """``glitch/idle/neon`` -> ("glitch", "idle", "neon")."""
    character, pose, variant = key.split(SEPARATOR, 2)
    return character, pose, variant


def sheet_key(character: str, variant: str) -> str:
    """("glitch", "neon") -> ``glitch/neon``."""
    return f"{character}{SEPARATOR}{variant}"


def split_sheet(key: str) -> tuple[str, str]:
    character, _, variant = key.partition(SEPARATOR)
    return character, variant


def poses_by_variant(keys: Iterable[str]) -> dict[tuple[str, str], list[str]]:
    """A run's triple keys grouped by (character, variant), poses in order."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for key in keys:
        character, pose, variant = split(key)
        grouped.setdefault((character, variant), []).append(pose)
    return grouped


class VariantPartitions:
    """The variant partitions of one library, from ``{character: {variant: [pose, ...]}}``,
    and the mappings to the base partitions: a variant pose reads its own base pose image
    (``from_poses``) and its own character's spec and LoRA (``from_characters``); a variant
    sheet reads its own variant's sprites (``to_sheet``) and its character's base sheet
    (``from_base_sheet``)."""

    def __init__(self, variants: Mapping[str, Mapping[str, Iterable[str]]]):
        self.by_character = {c: {v: list(poses) for v, poses in vs.items()} for c, vs in variants.items()}
        self.triples = [(c, p, v) for c, vs in self.by_character.items() for v, poses in vs.items() for p in poses]
        self.variants = dg.StaticPartitionsDefinition([join(*t) for t in self.triples])
        self.sheets = dg.StaticPartitionsDefinition([sheet_key(c, v) for c, vs in self.by_character.items() for v in vs])
        from_poses: dict[str, list[str]] = {}
        from_characters: dict[str, list[str]] = {}
        for c, p, v in self.triples:
            from_poses.setdefault(join_pose(c, p), []).append(join(c, p, v))
            from_characters.setdefault(c, []).append(join(c, p, v))
        self.from_poses = dg.StaticPartitionMapping(from_poses)
        self.from_characters = dg.StaticPartitionMapping(from_characters)
        self.to_sheet = dg.StaticPartitionMapping({join(c, p, v): sheet_key(c, v) for c, p, v in self.triples})
        self.from_base_sheet = dg.StaticPartitionMapping(
            {c: [sheet_key(c, v) for v in vs] for c, vs in self.by_character.items() if vs}
        )

    @classmethod
    def of_specs(cls, specs: Mapping) -> "VariantPartitions":
        from fal_assets.variants import poses_of

        return cls({name: {v: poses_of(spec, v) for v in spec.variants} for name, spec in specs.items() if spec.variants})

    @classmethod
    def of_folder(cls, folder: str, allow_references_outside: bool = False) -> "VariantPartitions":
        """From the specs in ``folder`` that load cleanly (each file parsed once per process)."""
        from fal_assets.spec import scan_specs

        from .resources import cached_load_spec

        specs, _ = scan_specs(folder, loader=lambda path: cached_load_spec(path, allow_references_outside))
        return cls.of_specs(specs)

    def range_of(self, character: str, variant: str) -> tuple[str, str]:
        """The first and last key of one variant's poses (a contiguous range)."""
        poses = self.by_character[character][variant]
        return join(character, poses[0], variant), join(character, poses[-1], variant)
