"""The user's own reference images (a spec's ``references_dir``): where they may live
and whether they make a training dataset, checked before any run.

Confinement: the folder, and every image in it, must resolve (symlinks followed) inside
the spec file's own folder tree. Its files are copied into the output and uploaded to
fal with the dataset, so ``/etc``, ``../../..`` or a symlink out of the repository is
refused unless the caller allows it (the Dagster ``characters`` resource's
``allow_references_outside``, or ``fal-assets validate --allow-references-outside``).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .dataset import MAX_IMAGES, MIN_IMAGES, MIN_SIDE, near_duplicates
from .errors import Problem
from .media import MAX_INPUT_IMAGE_BYTES

if TYPE_CHECKING:
    from .spec import CharacterSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
OPT_OUT = "or set allow_references_outside: true on the Dagster characters resource to allow it"


def confinement_problem(spec_file: Path, target: Path, shown: str, what: str = "references_dir") -> Problem | None:
    """A problem when ``target`` (resolved) lies outside the spec file's folder tree."""
    root = Path(spec_file).resolve().parent
    resolved = Path(target).resolve()
    if resolved == root or root in resolved.parents:
        return None
    return Problem(str(spec_file), what, f"{shown} resolves to {resolved}, outside the spec's folder {root}; keep reference "
                                         f"images in a folder beside the spec (symlinks are followed), {OPT_OUT}")


def image_files(folder: Path) -> list[Path]:
    """The image files of a references folder, by name (other files are ignored)."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def check(spec: "CharacterSpec") -> list[Problem]:
    """Every problem with the spec's ``references_dir``: confinement (unless allowed when
    the spec was loaded), a readable folder, files that are images and decode, each at
    least ``MIN_SIDE`` px a side, and ``MIN_IMAGES``-``MAX_IMAGES`` distinct ones (the
    trainer's rules, near-duplicates counted once). Empty when the spec names none."""
    import imagehash
    from PIL import Image

    folder = spec.references_path
    if folder is None:
        return []
    where, field = str(spec.source or spec.name), "references_dir"
    allowed = spec.references_outside_allowed
    if spec.source is not None and not allowed:
        outside = confinement_problem(spec.source, folder, repr(spec.references_dir))
        if outside is not None:
            return [outside]
    try:
        files = image_files(folder)
    except OSError as exc:
        return [Problem(where, field, f"cannot read the folder {folder}: {exc.strerror or exc}")]
    if not files:
        return [Problem(where, field, f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); fal's trainer wants {MIN_IMAGES} to {MAX_IMAGES}")]
    problems: list[Problem] = []
    hashes = {}
    for file in files:
        name = f"{field}/{file.name}"
        if spec.source is not None and not allowed:
            outside = confinement_problem(spec.source, file, file.name, name)
            if outside is not None:
                problems.append(outside)
                continue
        try:
            info = file.stat()
            if not stat.S_ISREG(info.st_mode):
                problems.append(Problem(where, name, "is not a regular file"))
                continue
            if info.st_size > MAX_INPUT_IMAGE_BYTES:
                problems.append(Problem(where, name, f"is {info.st_size / 2**20:.0f} MB; a reference image may be {MAX_INPUT_IMAGE_BYTES // 2**20} MB at most"))
                continue
            with Image.open(file) as image:
                image.verify()
            with Image.open(file) as image:
                width, height = image.size
                hashes[file.name] = imagehash.phash(image.convert("RGB"))
        except OSError as exc:
            problems.append(Problem(where, name, f"cannot read it: {exc.strerror or exc}" if exc.strerror else f"does not decode as an image ({exc})"))
            continue
        except Exception as exc:  # noqa: BLE001 - any decode failure is the user's file
            problems.append(Problem(where, name, f"does not decode as an image ({type(exc).__name__}: {exc})"))
            continue
        if min(width, height) < MIN_SIDE:
            problems.append(Problem(where, name, f"is {width}x{height}; fal's trainer wants at least {MIN_SIDE} px on each side"))
    if problems:
        return problems
    dropped = near_duplicates(hashes)
    distinct = len(hashes) - len(dropped)
    if not MIN_IMAGES <= distinct <= MAX_IMAGES:
        twins = f" ({len(dropped)} near-duplicates counted once)" if dropped else ""
        problems.append(Problem(where, field, f"{folder} holds {distinct} distinct images{twins}; fal's trainer wants {MIN_IMAGES} to {MAX_IMAGES}"))
    return problems
