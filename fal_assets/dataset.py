"""The training dataset zip fal's trainer takes: images plus a caption .txt beside each.

Rules (fal-ai/flux-2-trainer, seed 000): 9 to 50 images, each at least 1024 px on its
short side, a caption per image containing the trigger word, no near-duplicates
(redundancy hurts a LoRA more than it helps). Near-duplicates are found with a
perceptual hash (imagehash's pHash) and dropped before the count is checked.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic
from .errors import InvalidInput, Problem

MIN_IMAGES, MAX_IMAGES, MIN_SIDE = 9, 50, 1024
NEAR_DUPLICATE_DISTANCE = 6  # pHash Hamming distance (of 64 bits) at or below which two images are one


@dataclass(frozen=True)
class DatasetImage:
    name: str
    path: Path
    caption: str


@dataclass
class DatasetReport:
    zip_path: Path
    kept: list[str]
    dropped: dict[str, str] = field(default_factory=dict)  # name -> why
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.kept)


def near_duplicates(hashes: dict[str, object], distance: int = NEAR_DUPLICATE_DISTANCE) -> dict[str, str]:
    """name -> the earlier image it nearly duplicates (pure: works on any hashes with ``-``)."""
    kept: list[str] = []
    dropped: dict[str, str] = {}
    for name, value in hashes.items():
        twin = next((k for k in kept if hashes[k] - value <= distance), None)
        if twin is None:
            kept.append(name)
        else:
            dropped[name] = twin
    return dropped


def check_dataset(images: list[DatasetImage], trigger_word: str, where: str) -> tuple[list[Problem], dict[str, tuple[int, int]]]:
    """Problems with a dataset's images and captions (sizes checked on decode)."""
    from PIL import Image

    problems: list[Problem] = []
    sizes: dict[str, tuple[int, int]] = {}
    for item in images:
        try:
            with Image.open(item.path) as image:
                image.verify()
            with Image.open(item.path) as image:
                sizes[item.name] = image.size
        except Exception as exc:  # noqa: BLE001 - any decode failure is the user's file
            problems.append(Problem(where, f"images.{item.name}", f"does not decode as an image ({exc})"))
            continue
        if min(sizes[item.name]) < MIN_SIDE:
            width, height = sizes[item.name]
            problems.append(Problem(where, f"images.{item.name}", f"is {width}x{height}; fal's trainer wants at least {MIN_SIDE} px on each side"))
        if trigger_word not in item.caption:
            problems.append(Problem(where, f"captions.{item.name}", f"caption lacks the trigger word {trigger_word!r}"))
    return problems, sizes


def build_dataset(images: list[DatasetImage], trigger_word: str, out_zip: Path, *, where: str = "dataset") -> DatasetReport:
    """Check, de-duplicate and zip; raise ``InvalidInput`` (one line per problem) or write atomically."""
    import imagehash
    from PIL import Image

    problems, sizes = check_dataset(images, trigger_word, where)
    if problems:
        raise InvalidInput(problems)
    hashes = {}
    for item in images:
        with Image.open(item.path) as image:
            hashes[item.name] = imagehash.phash(image.convert("RGB"))
    dropped = near_duplicates(hashes)
    kept = [item for item in images if item.name not in dropped]
    if not MIN_IMAGES <= len(kept) <= MAX_IMAGES:
        raise InvalidInput(
            [
                Problem(
                    where,
                    "images",
                    f"{len(kept)} distinct images ({len(dropped)} near-duplicates dropped); fal's trainer wants {MIN_IMAGES} to {MAX_IMAGES}",
                )
            ]
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for item in kept:
            suffix = item.path.suffix.lower() or ".png"
            info = zipfile.ZipInfo(f"{item.name}{suffix}", date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, item.path.read_bytes())
            caption = zipfile.ZipInfo(f"{item.name}.txt", date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(caption, item.caption)
    atomic.write_bytes(out_zip, buffer.getvalue())
    return DatasetReport(
        Path(out_zip),
        [item.name for item in kept],
        {name: f"near-duplicate of {twin}" for name, twin in dropped.items()},
        {name: sizes[name] for name in sizes if name not in dropped},
    )


def read_dataset(zip_bytes: bytes) -> dict[str, tuple[bytes, str | None]]:
    """stem -> (image bytes, caption or None), from a trainer zip."""
    out: dict[str, tuple[bytes, str | None]] = {}
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        names = archive.namelist()
        for name in names:
            stem, suffix = Path(name).stem, Path(name).suffix.lower()
            if suffix in (".png", ".jpg", ".jpeg", ".webp"):
                caption_name = str(Path(name).with_suffix(".txt"))
                caption = archive.read(caption_name).decode("utf-8") if caption_name in names else None
                out[stem] = (archive.read(name), caption)
    return out
