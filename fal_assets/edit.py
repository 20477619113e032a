"""Variant edits and variant sheets: the functions behind the variant assets.

``variant_images`` sends one edit per pose of a variant through the same ``generate``
path as every paid request (validated, priced, journaled before it is sent, never paid
twice) and places each result at ``<variant>/poses_raw/<pose>.png``, conformed to the
base image's size. ``build_variant_sheet`` puts the variant's cutouts on the base
sheet's canvas with the base's own placement of each pose (same canvas, scale, pivot
and baseline), so a game swaps skins frame for frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import atomic
from .errors import FalAssetsError, GenerationFailed, InvalidInput, Problem
from .generate import Generation, Request
from .spec import CharacterSpec
from .sprite_sheet import POSES_DIR, Sheet
from .variants import check_variant, file_sha256, palette_of, poses_of, variant_request

Generate = Callable[[list[Request]], list["Generation | BaseException"]]


@dataclass
class VariantImage:
    """One edited pose: where it is, what made it, what it was made from."""

    pose: str
    variant: str
    path: Path
    generation: Generation
    prompt: str
    input_path: Path
    input_sha256: str
    input_size: tuple[int, int]
    output_size: tuple[int, int]  # as the endpoint returned it (before conforming)

    @property
    def conformed(self) -> bool:
        return self.output_size != self.input_size


def conform(image, size: tuple[int, int]):
    """An edit's output brought back onto the base image's frame: the edit kept the
    composition, fitted and centred at its own size (Kontext answers about 1 MP at the
    input's ratio, e.g. 880x1168 for 768x1024), so crop the centred region with the base's
    aspect ratio and resize it to the base's size."""
    from PIL import Image

    if image.size == tuple(size):
        return image
    factor = min(image.width / size[0], image.height / size[1])
    w, h = size[0] * factor, size[1] * factor
    left, top = (image.width - w) / 2, (image.height - h) / 2
    box = (round(left), round(top), round(left + w), round(top + h))
    return image.crop(box).resize(tuple(size), Image.Resampling.LANCZOS)


def base_image(base_dir: Path, pose: str) -> Path | None:
    for suffix in (".png", ".jpg", ".jpeg", ".webp"):
        path = Path(base_dir) / f"{pose}{suffix}"
        if path.is_file():
            return path
    return None


def variant_images(
    spec: CharacterSpec,
    name: str,
    poses: list[str],
    base_dir: Path,
    out_dir: Path,
    generate: Generate,
    lora_weights: Path | None = None,
) -> dict[str, VariantImage | BaseException]:
    """Variant ``name`` of each of ``poses``, edited from the base pose images in
    ``base_dir`` and fanned out together; each pose's image or its error.

    Refuses the whole variant before sending anything when ``check_variant`` finds a
    problem (wrong endpoint, too many inputs, unknown price, ...); a pose without a base
    image is that pose's error.
    """
    from PIL import Image

    problems = check_variant(spec, name)
    if problems:
        raise InvalidInput(problems)
    wanted = poses_of(spec, name)
    out: dict[str, VariantImage | BaseException] = {}
    jobs: list[tuple[str, Path, tuple[int, int], Request]] = []
    for pose in poses:
        if pose not in wanted:
            out[pose] = InvalidInput([Problem(str(spec.source or spec.name), f"variants.{name}.poses", f"{pose!r} does not get this variant; it has: {', '.join(wanted)}")])
            continue
        source = base_image(base_dir, pose)
        if source is None:
            out[pose] = FalAssetsError(f"{spec.name}/{pose}: no base pose image in {base_dir}; materialize pose_images first")
            continue
        with Image.open(source) as opened:
            size = opened.size
        jobs.append((pose, source, size, variant_request(spec, pose, name, source, size=size, lora_weights=lora_weights)))
    outcomes = generate([job[3] for job in jobs]) if jobs else []
    for (pose, source, size, request), outcome in zip(jobs, outcomes):
        if isinstance(outcome, BaseException):
            out[pose] = outcome
            continue
        try:
            out[pose] = _place(pose, name, source, size, outcome, Path(out_dir) / f"{pose}.png", request.arguments["prompt"])
        except Exception as exc:  # noqa: BLE001 - one bad file fails its pose, not the others
            out[pose] = exc
    return {pose: out[pose] for pose in poses}


def _place(pose: str, name: str, source: Path, size: tuple[int, int], generation: Generation, target: Path, prompt: str) -> VariantImage:
    from PIL import Image

    if not generation.paths:
        raise GenerationFailed(f"{pose}/{name}: the edit returned no image")
    with Image.open(generation.paths[0]) as opened:
        got = opened.size
        image = conform(opened.convert("RGB"), size)
    atomic.save_image(target, image)
    return VariantImage(pose, name, target, generation, prompt, source, file_sha256(source), tuple(size), tuple(got))


# --------------------------------------------------------------------------- sheets


@dataclass
class VariantSheet(Sheet):
    """A base ``Sheet``'s files for one variant, with the pivots it was aligned on."""

    variant: str
    pivots: dict[str, tuple[int, int]]


def _read_base_layout(base_poses_dir: Path) -> dict:
    import json

    manifest = Path(base_poses_dir) / "poses.json"
    if not manifest.is_file():
        raise InvalidInput([Problem(str(manifest), "", "the base sheet's poses.json is missing; materialize sprite_sheet first (a variant takes the base's canvas and pivots)")])
    return json.loads(manifest.read_text())


def place_like_base(cutout, layout: dict, canvas: tuple[int, int]):
    """The variant cutout on the base's canvas, moved and scaled exactly as the base
    sheet moved and scaled the base cutout of the same pose (its ``bbox`` in the source
    frame onto its ``box`` on the canvas). Returns the image and the share of its
    opaque pixels that fell outside the canvas."""
    import numpy as np
    from PIL import Image

    from .normalise import resize_rgba

    left, top, right, bottom = layout["bbox"]
    x0, y0, x1, y1 = layout["box"]
    sx, sy = (x1 - x0) / (right - left), (y1 - y0) / (bottom - top)
    size = (max(1, round(cutout.width * sx)), max(1, round(cutout.height * sy)))
    scaled = resize_rgba(cutout, size)
    offset = (round(x0 - left * sx), round(y0 - top * sy))
    sheet = Image.new("RGBA", tuple(canvas), (0, 0, 0, 0))
    sheet.alpha_composite(_clip(scaled, offset, canvas), dest=(max(0, offset[0]), max(0, offset[1])))
    total = float((np.asarray(scaled.getchannel("A")) > 127).sum())
    kept = float((np.asarray(sheet.getchannel("A")) > 127).sum())
    return sheet, (0.0 if total == 0 else max(0.0, 1.0 - kept / total))


def _clip(image, offset: tuple[int, int], canvas: tuple[int, int]):
    """The part of ``image`` placed at ``offset`` that lies on the canvas."""
    left, top = max(0, -offset[0]), max(0, -offset[1])
    right = min(image.width, canvas[0] - offset[0])
    bottom = min(image.height, canvas[1] - offset[1])
    return image.crop((left, top, max(left, right), max(top, bottom)))


def build_variant_sheet(spec: CharacterSpec, name: str, cutouts_dir: Path, character_dir: Path, variant_dir: Path) -> VariantSheet:
    """The variant's sprites on the base's canvas, frame for frame, and its sheet files:
    ``sprite_layers/poses/<pose>.png`` + ``poses.json``, ``sheet.png`` + ``sheet.json``,
    ``sheet.tres`` and ``contact_sheet.png`` under ``variant_dir`` (the base's layout)."""
    from PIL import Image

    from .sheets import contact_sheet, pack_atlas, write_atlas

    cutouts_dir, variant_dir = Path(cutouts_dir), Path(variant_dir)
    poses = poses_of(spec, name)
    missing = [pose for pose in poses if not (cutouts_dir / f"{pose}.png").is_file()]
    if missing:
        raise InvalidInput([Problem(str(cutouts_dir), "poses", f"no variant cutout yet for {', '.join(missing)}; materialize variant_sprites first")])
    base = _read_base_layout(Path(character_dir) / POSES_DIR)
    canvas = tuple(base["canvas"])
    absent = [pose for pose in poses if pose not in base["poses"]]
    if absent:
        raise InvalidInput([Problem(str(Path(character_dir) / POSES_DIR / "poses.json"), "poses", f"the base sheet lacks {', '.join(absent)}; materialize sprite_sheet again")])
    images, warnings, layouts = {}, [], {}
    for pose in poses:
        with Image.open(cutouts_dir / f"{pose}.png") as opened:
            cutout = opened.convert("RGBA")
        layout = base["poses"][pose]
        images[pose], clipped = place_like_base(cutout, layout, canvas)
        layouts[pose] = layout
        if clipped > 0.01:
            warnings.append(f"{pose}: {clipped:.1%} of the variant's opaque pixels fall outside the base canvas (the edit moved the figure)")
    poses_dir = variant_dir / POSES_DIR
    written = {pose: atomic.save_image(poses_dir / f"{pose}.png", image, optimize=False) for pose, image in images.items()}
    pivots = {pose: tuple(layouts[pose]["pivot"]) for pose in poses}
    atomic.write_json(poses_dir / "poses.json", {
        **{k: base[k] for k in ("canvas", "baseline", "height", "scale") if k in base},
        "variant": name,
        "palette": palette_of(spec, name),
        "warnings": warnings,
        "poses": {pose: layouts[pose] for pose in poses},
    })
    atlas = pack_atlas(images, pivots=pivots)
    paths = write_atlas(atlas, variant_dir, name="sheet")
    contact = atomic.save_image(variant_dir / "contact_sheet.png", contact_sheet(images))
    return VariantSheet(poses_dir=poses_dir, poses=written, atlas_png=paths["png"], atlas_json=paths["json"], godot=paths["tres"],
                        contact_png=contact, canvas=canvas, atlas_size=atlas.size, warnings=tuple(warnings),
                        variant=name, pivots=pivots)


def alignment_problems(variant_dir: Path, character_dir: Path, poses: list[str], *, min_overlap: float = 0.8) -> list[str]:
    """A variant sheet a game can swap for the base frame for frame: the same canvas,
    the same pivot per pose, and the same silhouette (alpha overlap, intersection over
    union, at least ``min_overlap``: an edit recolours, it does not move the figure)."""
    import json

    import numpy as np
    from PIL import Image

    mine_dir, base_dir = Path(variant_dir) / POSES_DIR, Path(character_dir) / POSES_DIR
    try:
        mine, base = json.loads((mine_dir / "poses.json").read_text()), json.loads((base_dir / "poses.json").read_text())
    except (OSError, ValueError) as exc:
        return [f"cannot read a sheet manifest: {exc}"]
    problems = []
    if mine.get("canvas") != base.get("canvas"):
        problems.append(f"canvas {mine.get('canvas')} differs from the base's {base.get('canvas')}")
    for pose in poses:
        layout, base_layout = mine.get("poses", {}).get(pose), base.get("poses", {}).get(pose)
        if layout is None or base_layout is None:
            problems.append(f"{pose}: missing from {'the variant' if layout is None else 'the base'} sheet")
            continue
        if layout.get("pivot") != base_layout.get("pivot"):
            problems.append(f"{pose}: pivot {layout.get('pivot')} differs from the base's {base_layout.get('pivot')}")
        with Image.open(mine_dir / f"{pose}.png") as a, Image.open(base_dir / f"{pose}.png") as b:
            if a.size != b.size:
                problems.append(f"{pose}: frame {a.size[0]}x{a.size[1]}, the base's {b.size[0]}x{b.size[1]}")
                continue
            ma, mb = np.asarray(a.convert("RGBA"))[..., 3] > 127, np.asarray(b.convert("RGBA"))[..., 3] > 127
        union = float((ma | mb).sum())
        overlap = float((ma & mb).sum()) / union if union else 1.0
        if overlap < min_overlap:
            problems.append(f"{pose}: silhouette overlaps the base's by {overlap:.0%} (< {min_overlap:.0%}); the edit moved or reshaped the figure")
    return problems
