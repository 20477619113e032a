"""Pure quality rules behind the asset checks: each returns a list of problems (empty = pass)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from .dataset import MAX_IMAGES, MIN_IMAGES, MIN_SIDE, read_dataset
from .media import image_size_of


def dataset_problems(zip_path: Path, trigger_word: str) -> list[str]:
    """fal's trainer rules on a built zip: 9-50 images >= 1024 px, captions with the trigger."""
    try:
        items = read_dataset(Path(zip_path).read_bytes())
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"{zip_path}: not a readable zip ({exc})"]
    problems = []
    if not MIN_IMAGES <= len(items) <= MAX_IMAGES:
        problems.append(f"{len(items)} images; fal's trainer wants {MIN_IMAGES} to {MAX_IMAGES}")
    for name, (data, caption) in sorted(items.items()):
        width, height = image_size_of(data)
        if min(width, height) < MIN_SIDE:
            problems.append(f"{name}: {width}x{height} is under {MIN_SIDE} px")
        if not caption or trigger_word not in caption:
            problems.append(f"{name}: caption lacks the trigger word {trigger_word!r}")
    return problems


def lora_problems(weights: Path, expected_sha256: str | None = None) -> list[str]:
    """The weights file is there, parses as safetensors, and matches its recorded hash."""
    weights = Path(weights)
    if not weights.is_file():
        return [f"{weights}: missing (a lost LoRA is gone: restore it from the store)"]
    data = weights.read_bytes()
    problems = []
    if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256:
        problems.append(f"{weights}: sha256 differs from the one recorded at training")
    try:
        from safetensors.numpy import load

        if not load(data):
            problems.append(f"{weights}: holds no tensors")
    except Exception as exc:  # noqa: BLE001 - any parse failure is a broken file
        problems.append(f"{weights}: not a safetensors file ({exc})")
    return problems


def image_problems(path: Path, expected_size: tuple[int, int] | None, *, min_std: float = 4.0) -> list[str]:
    """A pose image decodes, has the asked size and is not blank (or a black flagged frame)."""
    from PIL import Image

    path = Path(path)
    if "quarantine" in path.parts:
        return [f"{path}: a quarantined (flagged) file is never used"]
    with Image.open(path) as image:
        size = image.size
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    problems = []
    if expected_size and tuple(size) != tuple(expected_size):
        problems.append(f"{path.name}: {size[0]}x{size[1]}, asked for {expected_size[0]}x{expected_size[1]}")
    if float(pixels.std()) < min_std:
        problems.append(f"{path.name}: blank (pixel standard deviation {pixels.std():.1f} < {min_std})")
    return problems


def sprite_problems(path: Path, *, coverage=(0.02, 0.9), border: int = 2) -> list[str]:
    """Real transparency: alpha coverage within bounds, nothing opaque at the border."""
    from PIL import Image

    with Image.open(path) as image:
        if "A" not in image.getbands():
            return [f"{Path(path).name}: no alpha channel"]
        alpha = np.asarray(image.getchannel("A"))
    problems = []
    share = float((alpha > 127).mean())
    if not coverage[0] <= share <= coverage[1]:
        problems.append(f"{Path(path).name}: {share:.1%} opaque; expected {coverage[0]:.0%} to {coverage[1]:.0%}")
    edge = np.concatenate([alpha[:border].ravel(), alpha[-border:].ravel(), alpha[:, :border].ravel(), alpha[:, -border:].ravel()])
    if (edge > 127).mean() > 0.01:
        problems.append(f"{Path(path).name}: the subject touches the image border (cut off)")
    return problems


def palette_misses(path: Path, palette: dict[str, str], *, tolerance: float = 60.0, min_share: float = 0.0005) -> dict[str, float]:
    """part -> distance of the nearest opaque colour, for each palette colour not found
    in the sprite (within ``tolerance`` RGB distance on at least ``min_share`` of its pixels)."""
    from PIL import Image

    with Image.open(path) as image:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    opaque = rgba[rgba[..., 3] > 200][:, :3]
    if opaque.size == 0:
        return {part: float("inf") for part in palette}
    if len(opaque) > 50000:
        opaque = opaque[:: len(opaque) // 50000 + 1]
    misses = {}
    for part, hex_code in palette.items():
        target = np.array([int(hex_code[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)
        distance = np.sqrt(((opaque - target) ** 2).sum(axis=1))
        if (distance <= tolerance).mean() < min_share:
            misses[part] = round(float(distance.min()), 1)
    return misses
