"""Normalise one character's pose cutouts: one canvas, one height, one baseline.

Rules (pure on images):

- Each cutout is trimmed to its content (alpha above ``alpha_threshold``).
- Standing poses are scaled to one height (``target_height``, or the median height
  of the standing cutouts), so the character is equally tall in every one of them.
- The other stances (crouch, sit, lying, airborne) use the character's scale
  (``target_height / median standing height``): they keep their size relative to the
  standing poses instead of being stretched to the same height.
- Every pose is anchored bottom-centre: the middle of its feet (the opaque span of its
  lowest rows) on the pivot, its lowest row on one shared baseline. An airborne
  pose sits on the baseline unless ``lifts`` gives its lift, as a fraction of the
  standing height (``0.25`` = a quarter of the character's height above the ground).
- One canvas size fits every pose with ``padding`` px on every side; the pivot is at
  the canvas's horizontal centre, on the baseline.
- Resizing is alpha-correct: premultiply, LANCZOS, un-premultiply (no dark fringes).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image

from .atomic import save_image, write_json
from .errors import InvalidInput, Problem

STANCES = ("standing", "crouch", "sit", "lying", "airborne")
POSE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FEET_BAND = 0.08  # share of a pose's height whose opaque span gives its feet centre
HEIGHT_DRIFT = 0.15  # standing poses farther than this from the median get a warning


@dataclass(frozen=True)
class NormalisedPose:
    """One pose on the shared canvas."""

    name: str
    image: Image.Image
    #: canvas px: the feet centre on the baseline (same for every pose of the set)
    pivot: tuple[int, int]
    #: the trimmed content box in the source cutout: (left, top, right, bottom)
    bbox: tuple[int, int, int, int]
    #: where the scaled content lies on the canvas: (left, top, right, bottom)
    box: tuple[int, int, int, int]
    scale: float
    stance: str
    lift: int = 0

    def metadata(self) -> dict[str, Any]:
        return {
            "pivot": list(self.pivot),
            "bbox": list(self.bbox),
            "box": list(self.box),
            "scale": round(self.scale, 6),
            "stance": self.stance,
            "lift": self.lift,
        }


@dataclass(frozen=True)
class NormalisedSet:
    """All poses of one character, ready for sheets."""

    poses: dict[str, NormalisedPose]
    canvas: tuple[int, int]
    baseline: int
    #: height in px of every standing pose on the canvas
    height: int
    #: the character's scale (source px -> canvas px) used for non-standing poses
    scale: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def images(self) -> dict[str, Image.Image]:
        return {name: pose.image for name, pose in self.poses.items()}

    @property
    def pivots(self) -> dict[str, tuple[int, int]]:
        return {name: pose.pivot for name, pose in self.poses.items()}

    def metadata(self) -> dict[str, Any]:
        return {
            "canvas": list(self.canvas),
            "baseline": self.baseline,
            "height": self.height,
            "scale": round(self.scale, 6),
            "warnings": list(self.warnings),
            "poses": {name: pose.metadata() for name, pose in self.poses.items()},
        }


def resize_rgba(image: Image.Image, size: tuple[int, int], resample=Image.Resampling.LANCZOS) -> Image.Image:
    """Resize an RGBA image with premultiplied alpha (no dark or light fringes)."""
    image = image.convert("RGBA")
    size = (int(size[0]), int(size[1]))
    if image.size == size:
        return image.copy()
    arr = np.asarray(image, dtype=np.float32) / 255.0
    alpha = arr[..., 3]
    planes = [arr[..., i] * alpha for i in range(3)] + [alpha]
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(p)).resize(size, resample)) for p in planes]
    # un-premultiply by the filtered alpha before clipping its ringing, so colours stay exact
    raw = out[3]
    rgb = np.stack(out[:3], axis=-1)
    visible = raw > 0.5 / 255.0
    rgb = np.where(visible[..., None], rgb / np.maximum(raw, 1e-6)[..., None], 0.0)
    rgba = np.dstack([np.clip(rgb, 0.0, 1.0), np.clip(raw, 0.0, 1.0)])
    return Image.fromarray(np.round(rgba * 255.0).astype(np.uint8))


def content_box(image: Image.Image, alpha_threshold: int = 8) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of pixels with alpha above the threshold, or None."""
    alpha = np.asarray(image.convert("RGBA"))[..., 3]
    rows = np.flatnonzero((alpha > alpha_threshold).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((alpha > alpha_threshold).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def estimate_lifts(cutouts: Mapping[str, Image.Image], stances: Mapping[str, str], alpha_threshold: int = 8) -> dict[str, float]:
    """Lifts of the airborne poses, read off the source frames: how much higher a jump's
    lowest pixel sits above the standing poses' ground line (the median gap between their
    feet and the frame's bottom), as a fraction of the standing height. Needs frames of
    one size and framing (one character's pose images); gives nothing without a standing
    pose to measure the ground against."""
    gaps, heights = {}, {}
    for name, image in cutouts.items():
        box = content_box(image, alpha_threshold)
        if box is not None:
            gaps[name] = (image.height - box[3]) / image.height
            heights[name] = (box[3] - box[1]) / image.height
    standing = [n for n in gaps if stances.get(n, "standing") == "standing"]
    if not standing:
        return {}
    ground = statistics.median(gaps[n] for n in standing)
    height = statistics.median(heights[n] for n in standing)
    return {
        name: round(min(2.0, (gaps[name] - ground) / height), 4)
        for name in gaps
        if stances.get(name) == "airborne" and gaps[name] > ground
    }


def feet_centre(image: Image.Image, alpha_threshold: int = 8) -> float:
    """x of the middle of the opaque span in the lowest rows (``FEET_BAND`` of the height)."""
    alpha = np.asarray(image.convert("RGBA"))[..., 3] > alpha_threshold
    rows = np.flatnonzero(alpha.any(axis=1))
    if rows.size == 0:
        return image.width / 2
    band = max(2, round(FEET_BAND * (rows[-1] - rows[0] + 1)))
    cols = np.flatnonzero(alpha[max(rows[-1] - band + 1, 0) : rows[-1] + 1].any(axis=0))
    return (cols[0] + cols[-1] + 1) / 2


def _validate(cutouts, stances, lifts, padding, target_height, alpha_threshold) -> None:
    where = "normalise"
    problems: list[Problem] = []
    if not cutouts:
        problems.append(Problem(where, "cutouts", "no poses given; at least one cutout is needed"))
    for name in cutouts:
        if not isinstance(name, str) or not POSE_NAME.match(name):
            problems.append(Problem(where, f"poses.{name}", "a pose name is 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"))
    for name, stance in (stances or {}).items():
        if name not in cutouts:
            problems.append(Problem(where, f"stances.{name}", f"no cutout named {name!r}; poses: {', '.join(sorted(cutouts))}"))
        elif stance not in STANCES:
            problems.append(Problem(where, f"stances.{name}", f"{stance!r} is not a stance; allowed: {', '.join(STANCES)}"))
    for name, lift in (lifts or {}).items():
        stance = (stances or {}).get(name, "standing")
        if name not in cutouts:
            problems.append(Problem(where, f"lifts.{name}", f"no cutout named {name!r}"))
        elif stance != "airborne":
            problems.append(Problem(where, f"lifts.{name}", f"only airborne poses take a lift; {name!r} is {stance}"))
        elif not (isinstance(lift, (int, float)) and 0 <= lift <= 2):
            problems.append(Problem(where, f"lifts.{name}", f"{lift!r} is not a lift; a fraction of the standing height from 0 to 2 is allowed"))
    if not (isinstance(padding, int) and 0 <= padding <= 1024):
        problems.append(Problem(where, "padding", f"{padding!r}: a whole number of px from 0 to 1024 is allowed"))
    if target_height is not None and not (isinstance(target_height, int) and 8 <= target_height <= 8192):
        problems.append(Problem(where, "target_height", f"{target_height!r}: a whole number of px from 8 to 8192 is allowed"))
    if not (isinstance(alpha_threshold, int) and 0 <= alpha_threshold < 255):
        problems.append(Problem(where, "alpha_threshold", f"{alpha_threshold!r}: 0 to 254 is allowed"))
    if problems:
        raise InvalidInput(problems)


def normalise_poses(
    cutouts: Mapping[str, Image.Image],
    *,
    stances: Mapping[str, str] | None = None,
    lifts: Mapping[str, float] | None = None,
    padding: int = 8,
    target_height: int | None = None,
    alpha_threshold: int = 8,
) -> NormalisedSet:
    """Put a character's cutouts on one canvas at one scale on one baseline (see module doc)."""
    _validate(cutouts, stances, lifts, padding, target_height, alpha_threshold)
    stances = dict(stances or {})
    lifts = dict(lifts or {})
    warnings: list[str] = []

    trimmed: dict[str, tuple[Image.Image, tuple[int, int, int, int]]] = {}
    empty = []
    for name, image in cutouts.items():
        image = image.convert("RGBA")
        box = content_box(image, alpha_threshold)
        if box is None:
            empty.append(Problem("normalise", f"poses.{name}", f"the cutout is empty (no pixel with alpha above {alpha_threshold})"))
            continue
        trimmed[name] = (image.crop(box), box)
    if empty:
        raise InvalidInput(empty)

    stance_of = {name: stances.get(name, "standing") for name in trimmed}
    heights = {name: crop.height for name, (crop, _) in trimmed.items()}
    standing = [heights[n] for n in trimmed if stance_of[n] == "standing"]
    if standing:
        reference = statistics.median(standing)
    else:
        reference = statistics.median(heights.values())
        warnings.append("no standing pose: the character's scale comes from the median height of all poses")
    height = target_height or max(1, round(reference))
    scale = height / reference

    placed = {}
    for name, (crop, box) in trimmed.items():
        stance = stance_of[name]
        if stance == "standing":
            pose_scale = height / crop.height
            drift = crop.height / reference - 1
            if abs(drift) > HEIGHT_DRIFT:
                warnings.append(f"standing pose {name!r} is {abs(drift):.0%} {'taller' if drift > 0 else 'shorter'} than the median standing pose before scaling; check its framing")
            size = (max(1, round(crop.width * pose_scale)), height)
        else:
            pose_scale = scale
            size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
            if standing and stance in ("crouch", "sit", "lying") and size[1] > height:
                warnings.append(f"{stance} pose {name!r} is taller than the standing poses at the character's scale; the generator probably framed it closer")
        resized = resize_rgba(crop, size)
        lift = round(lifts.get(name, 0) * height)
        placed[name] = (resized, box, pose_scale, stance, lift, round(feet_centre(resized, alpha_threshold)))

    half = max(max(anchor, image.width - anchor) for image, *_, anchor in placed.values())
    top = max(image.height + lift for image, _, _, _, lift, _ in placed.values())
    canvas = (2 * (half + padding), top + 2 * padding)
    baseline = canvas[1] - padding
    pivot = (canvas[0] // 2, baseline)

    poses = {}
    for name, (image, box, pose_scale, stance, lift, anchor) in placed.items():
        left = pivot[0] - anchor
        bottom = baseline - lift
        sheet = Image.new("RGBA", canvas, (0, 0, 0, 0))
        sheet.paste(image, (left, bottom - image.height))
        poses[name] = NormalisedPose(
            name=name,
            image=sheet,
            pivot=pivot,
            bbox=box,
            box=(left, bottom - image.height, left + image.width, bottom),
            scale=pose_scale,
            stance=stance,
            lift=lift,
        )
    return NormalisedSet(poses=poses, canvas=canvas, baseline=baseline, height=height, scale=scale, warnings=tuple(warnings))


def write_poses(normalised: NormalisedSet, out_dir: str | Path, *, manifest: bool = True) -> dict[str, Path]:
    """Write ``<out_dir>/<pose>.png`` per pose (and ``poses.json`` with pivots), atomically."""
    out_dir = Path(out_dir)
    written = {name: save_image(out_dir / f"{name}.png", pose.image, optimize=False) for name, pose in normalised.poses.items()}
    if manifest:
        write_json(out_dir / "poses.json", normalised.metadata())
    return written


__all__ = [
    "STANCES",
    "NormalisedPose",
    "NormalisedSet",
    "content_box",
    "estimate_lifts",
    "feet_centre",
    "normalise_poses",
    "resize_rgba",
    "write_poses",
]

