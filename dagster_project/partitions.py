"""Partitions: exactly the character x pose pairs the specs in ``characters/`` ask for.

Per-character assets are partitioned by ``characters`` (one key per spec); per-pose
assets by ``poses``, one key ``<character>/<pose>`` per pose a spec names, in spec
order, so one character's poses are one contiguous range. Both are static: computed
when the definitions load, from the specs that load cleanly. Two ``StaticPartitionMapping``s
join them: a pose reads its own character's LoRA and spec (``to_poses``), a sheet reads
its own character's sprites (``to_character``). Why static and not dynamic: see the
README's architecture section.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import dagster as dg

SEPARATOR = "/"


def join(character: str, pose: str) -> str:
    """("glitch", "idle") -> ``glitch/idle``."""
    return f"{character}{SEPARATOR}{pose}"


def split(key: str) -> tuple[str, str]:
    """``glitch/idle`` -> ("glitch", "idle")."""
    character, _, pose = key.partition(SEPARATOR)
    return character, pose


def poses_by_character(keys: Iterable[str]) -> dict[str, list[str]]:
    """A run's pose keys grouped by character, in order."""
    grouped: dict[str, list[str]] = {}
    for key in keys:
        character, pose = split(key)
        grouped.setdefault(character, []).append(pose)
    return grouped


class LibraryPartitions:
    """The partitions of one library of specs, from ``{character: [pose, ...]}``:
    ``characters``, ``poses`` (the real pairs only) and the two mappings between them."""

    def __init__(self, poses: Mapping[str, Iterable[str]], extras: frozenset[str] | None = None):
        #: the variant and animation keys the definitions were loaded with (``extra_keys``);
        #: None when unknown (then only characters and poses decide about reloads)
        self.extras = extras
        self.by_character = {name: list(names) for name, names in poses.items()}
        self.pairs = [(name, pose) for name, names in self.by_character.items() for pose in names]
        self._pairs = set(self.pairs)
        self.characters = dg.StaticPartitionsDefinition(list(self.by_character))
        self.poses = dg.StaticPartitionsDefinition([join(c, p) for c, p in self.pairs])
        # a per-pose asset reads its own character's per-character upstream ...
        self.to_poses = dg.StaticPartitionMapping(
            {name: [join(name, p) for p in names] for name, names in self.by_character.items()}
        )
        # ... and a per-character asset its own character's per-pose upstream
        self.to_character = dg.StaticPartitionMapping({join(c, p): c for c, p in self.pairs})

    @classmethod
    def of_specs(cls, specs: Mapping) -> "LibraryPartitions":
        return cls({name: list(spec.poses) for name, spec in specs.items()}, extra_keys(specs))

    def has(self, character: str, pose: str) -> bool:
        return (character, pose) in self._pairs

    def missing(self, specs: Mapping) -> dict[str, list[str]]:
        """Per character of ``specs``: its poses these partitions lack (a new spec or pose
        since the definitions loaded; the code location must reload to run them)."""
        out = {}
        for name, spec in specs.items():
            lacking = [p for p in spec.poses if not self.has(name, p)]
            if lacking:
                out[name] = lacking
        return out


def extra_keys(specs: Mapping) -> frozenset[str]:
    """The variant triples and animation pairs ``specs`` ask for, in words: their assets
    have static partitions too, so a new or removed one needs a reload as a pose does."""
    from fal_assets.variants import poses_of

    keys = {f"variant {name}/{pose}/{variant}" for name, spec in specs.items()
            for variant in spec.variants for pose in poses_of(spec, variant)}
    keys |= {f"animation {name}/{animation}" for name, spec in specs.items() for animation in spec.animations}
    return frozenset(keys)
