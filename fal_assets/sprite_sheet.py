"""A character's finished sprites: normalised poses, atlas, engine exports, contact sheet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import atomic
from .errors import InvalidInput, Problem
from .normalise import estimate_lifts, normalise_poses, write_poses
from .sheets import contact_sheet, pack_atlas, write_atlas
from .spec import CharacterSpec

POSES_DIR = Path("sprite_layers") / "poses"  # seed 000's layout


@dataclass
class Sheet:
    poses_dir: Path
    poses: dict[str, Path]
    atlas_png: Path
    atlas_json: Path
    godot: Path
    contact_png: Path
    canvas: tuple[int, int]
    atlas_size: tuple[int, int]
    warnings: tuple[str, ...]


def build_sheet(spec: CharacterSpec, cutouts_dir: Path, character_dir: Path) -> Sheet:
    """Normalise every pose cutout of ``spec`` and write the sheet files under ``character_dir``."""
    from PIL import Image

    cutouts_dir, character_dir = Path(cutouts_dir), Path(character_dir)
    missing = [pose for pose in spec.poses if not (cutouts_dir / f"{pose}.png").is_file()]
    if missing:
        raise InvalidInput([Problem(str(cutouts_dir), "poses", f"no cutout yet for {', '.join(missing)}; materialize sprites first")])
    cutouts = {}
    for pose in spec.poses:
        with Image.open(cutouts_dir / f"{pose}.png") as image:
            cutouts[pose] = image.convert("RGBA")
    stances = {name: p.stance for name, p in spec.poses.items()}
    normalised = normalise_poses(cutouts, stances=stances, lifts=estimate_lifts(cutouts, stances))
    poses_dir = character_dir / POSES_DIR
    written = write_poses(normalised, poses_dir)
    atlas = pack_atlas(normalised.images, pivots=normalised.pivots)
    paths = write_atlas(atlas, character_dir, name="sheet")
    contact = atomic.save_image(character_dir / "contact_sheet.png", contact_sheet(normalised.images))
    return Sheet(
        poses_dir, written, paths["png"], paths["json"], paths["tres"], contact, normalised.canvas, atlas.size, normalised.warnings
    )
