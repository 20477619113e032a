"""Texts several test files share: seed 000's GLITCH description and a tiny spec."""

from fal_assets.spec import DEFAULT_VIEWS

# seed 000, workflow 1, verbatim
GLITCH = """
3D Pixar/Disney animation style character (like Big Hero 6, The Incredibles):
Petite athletic girl, approximately 5 heads tall, slender build.
Face: Round cute face, digital goggle visor covering eyes with pink/purple neon glow.
Short dark blonde hair in a high ponytail with black hair tie.
Outfit: Black tactical bodysuit with dark gray armor panels. Hot pink (#FF1493) and
magenta neon-glowing circuit lines on armor. Small katana sheathed on back.
Style: Professional 3D render, Pixar film quality, cinematic lighting, white background.
Full body visible head to toe.
"""

# The smallest spec the trainer accepts: 9 views (fal's minimum dataset), 2 poses.
VIEWS = "".join(f"  {name}: {text}\n" for name, text in list(DEFAULT_VIEWS.items())[:9])
TINY = """\
name: {name}
trigger_word: {name}_char
description: a small round green slime with two dot eyes
style: flat pixel art
palette:
  body: "#33CC66"
poses:
  idle: sitting still, looking at the viewer
  hop: hopping up in the air
views:
""" + VIEWS


def own_references(folder, count: int = 9, size: int = 1024) -> None:
    """``count`` distinct images (different shapes on white) of ``size`` px: a
    ``references_dir`` that passes fal's trainer rules."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for i in range(count):
        pixels = np.full((size, size, 3), 255, np.uint8)
        for _ in range(6):
            x, y = rng.integers(0, size - 200, 2)
            w, h = rng.integers(60, 200, 2)
            pixels[y:y + h, x:x + w] = rng.integers(0, 255, 3)
        Image.fromarray(pixels).save(folder / f"ref_{i:02d}.png")


def local_resources(tmp_path, folder, journal_url=None) -> dict:
    """The resources of an offline run of ``folder``'s specs under ``tmp_path``: the local
    backend (its journal in ``work/`` unless ``journal_url``), files in ``output/``, keying."""
    from dagster_project.resources import CharacterLibrary, CutoutResource, FalResource, StoreResource

    return {
        "fal": FalResource(backend="local", workdir=str(tmp_path / "work"), journal_url=journal_url),
        "store": StoreResource(root=str(tmp_path / "output")),
        "cutout": CutoutResource(method="key"),
        "characters": CharacterLibrary(folder=str(folder)),
    }
