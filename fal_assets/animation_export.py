"""Animated sprites out: cut-out frames on one canvas per animation, and engine exports.

Normalisation (pure on images): every frame of one animation is scaled by one factor,
the character's scale (``sprite_layers/poses/poses.json`` from the sprite sheet: canvas
px per source px), corrected for the frame's own resolution (a video clip's frames are
not the pose image's size), so an idle and a run are the same size. The camera is fixed
inside an animation, so the source's ground line (the lowest opaque row of any frame) is
put on one baseline for every frame: feet planted stay planted, a jump keeps its height.
Each frame is centred horizontally on its opaque pixels' centre (an in-place cycle).
The canvas fits every frame with ``padding`` px, the pivot is its bottom centre on the
baseline, ``padding`` px above the canvas's bottom edge like the pose sprites.

Exports of a character's animations (``output/<character>/``):

- ``animations.png`` + ``animations.json``: one atlas, TexturePacker JSON-hash, frames
  named ``<animation>/<nnn>`` (Phaser ``load.atlas``, PixiJS ``Assets.load``);
- ``animations.aseprite.json``: the same atlas in Aseprite's JSON (frames keyed by
  index, ``duration`` in ms, ``meta.frameTags`` one per animation) for Phaser's
  ``load.aseprite`` + ``anims.createFromAseprite``;
- ``animations.tres``: a Godot 4 ``SpriteFrames`` with one animation per name, its fps
  as ``speed`` and its ``loop`` flag;
- ``animations/<name>.gif`` and ``.webp``: an animated preview per animation.

And the quality rules behind the asset checks: frames share canvas and baseline, a
loop's last frame leads back to its first, no frame is empty or clipped.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from . import __version__, atomic
from .errors import InvalidInput, Problem
from .normalise import content_box, resize_rgba
from .sheets import _gd_string, pack_atlas

ALPHA = 8  # alpha above this counts as the character
PADDING = 8
POSES_JSON = Path("sprite_layers") / "poses" / "poses.json"


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class CharacterScale:
    """Canvas px per source px of the character's pose images (their width), and the
    standing height in canvas px: what every animation of the character is scaled by."""

    scale: float
    height: int
    source_width: int | None = None

    @classmethod
    def from_sheet(cls, character_dir: Path, pose_image: Path | None = None) -> "CharacterScale":
        """Read off the sprite sheet (``poses.json``); ``pose_image`` gives the source width."""
        path = Path(character_dir) / POSES_JSON
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            raise InvalidInput([Problem(str(path), "scale", "no sprite sheet yet; materialize sprite_sheet first (animations take the character's scale from it)")]) from None
        width = None
        if pose_image is not None and Path(pose_image).is_file():
            with Image.open(pose_image) as image:
                width = image.width
        return cls(float(data["scale"]), int(data["height"]), width)


@dataclass(frozen=True)
class AnimationCanvas:
    """One animation's frames on their shared canvas."""

    name: str
    frames: list[Image.Image]
    canvas: tuple[int, int]
    baseline: int
    pivot: tuple[int, int]
    scale: float
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {"canvas": list(self.canvas), "baseline": self.baseline, "pivot": list(self.pivot),
                "scale": round(self.scale, 6), "frames": len(self.frames), "boxes": [list(b) for b in self.boxes]}


def _centroid_x(image: Image.Image) -> float:
    alpha = np.asarray(image)[..., 3].astype(np.float64)
    total = alpha.sum()
    if total <= 0:
        return image.width / 2
    return float((alpha.sum(axis=0) * np.arange(image.width)).sum() / total)


def normalise_frames(
    name: str, cutouts: Sequence[Image.Image], character: CharacterScale, *, padding: int = PADDING
) -> AnimationCanvas:
    """Put one animation's cutouts on one canvas at the character's scale (module doc)."""
    if not cutouts:
        raise InvalidInput([Problem("animation", name, "no frames to normalise")])
    images = [c.convert("RGBA") for c in cutouts]
    if len({im.size for im in images}) != 1:
        raise InvalidInput([Problem("animation", name, f"frames of one animation differ in size: {sorted({im.size for im in images})}")])
    boxes = [content_box(im, ALPHA) for im in images]
    empty = [i for i, box in enumerate(boxes) if box is None]
    if empty:
        raise InvalidInput([Problem("animation", f"{name}/{i:03d}", "the frame is empty (nothing left after the cutout)") for i in empty])
    source_w = images[0].width
    scale = character.scale * (character.source_width / source_w if character.source_width else 1.0)
    ground = max(box[3] for box in boxes)  # the source's ground line: the lowest any frame reaches
    placed = []
    for image, box in zip(images, boxes):
        crop = image.crop(box)
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        scaled = resize_rgba(crop, size)
        anchor = _centroid_x(scaled)
        above = round((ground - box[3]) * scale)  # how far this frame's lowest pixel is above the ground
        placed.append((scaled, anchor, above))
    half = max(max(anchor, im.width - anchor) for im, anchor, _ in placed)
    half = int(np.ceil(half))
    top = max(im.height + above for im, _, above in placed)
    canvas = (2 * (half + padding), top + 2 * padding)
    baseline = canvas[1] - padding
    pivot = (canvas[0] // 2, baseline)
    frames, out_boxes = [], []
    for image, anchor, above in placed:
        left = round(pivot[0] - anchor)
        bottom = baseline - above
        sheet = Image.new("RGBA", canvas, (0, 0, 0, 0))
        sheet.paste(image, (left, bottom - image.height))
        frames.append(sheet)
        out_boxes.append((left, bottom - image.height, left + image.width, bottom))
    return AnimationCanvas(name, frames, canvas, baseline, pivot, scale, out_boxes)


def write_frames(canvas: AnimationCanvas, folder: Path, *, fps: float, loop: bool) -> list[Path]:
    """``<folder>/000.png`` ... and ``animation.json`` (canvas, pivot, fps, loop), atomically;
    frames beyond this animation's count are removed."""
    folder = Path(folder)
    paths = [atomic.save_image(folder / f"{i:03d}.png", frame, optimize=False) for i, frame in enumerate(canvas.frames)]
    atomic.write_json(folder / "animation.json", {**canvas.metadata(), "name": canvas.name, "fps": fps, "loop": loop})
    keep = set(paths) | {folder / "animation.json"}
    for stale in folder.glob("*.png"):
        if stale not in keep:
            stale.unlink()
    return paths


# --------------------------------------------------------------------------- exports


@dataclass(frozen=True)
class Clip:
    """One animation as the exports see it: its frames (on its canvas), fps and loop."""

    name: str
    frames: list[Image.Image]
    fps: float
    loop: bool
    pivot: tuple[int, int]


def frame_name(animation: str, index: int) -> str:
    """``run/003``: how a frame is named in the atlas."""
    return f"{animation}/{index:03d}"


def pack_clips(clips: Sequence[Clip], *, image_name: str = "animations.png"):
    """One atlas for all clips (TexturePacker JSON-hash data, frames ``<anim>/<nnn>`` in order)."""
    sprites, pivots, names = {}, {}, {}
    for clip in clips:
        for i, frame in enumerate(clip.frames):
            key = f"{clip.name}.{i:03d}"  # the packer's names allow no '/'
            sprites[key], pivots[key], names[key] = frame, clip.pivot, frame_name(clip.name, i)
    atlas = pack_atlas(sprites, pivots=pivots)
    frames = {names[key]: atlas.frames[key] for key in sprites}
    data = {"frames": frames, "meta": {**atlas.data["meta"], "image": image_name}}
    return atlas.image, data


def aseprite_json(clips: Sequence[Clip], atlas_data: Mapping[str, Any]) -> dict[str, Any]:
    """The atlas as Aseprite's JSON export: frames keyed by their index ("0", "1", ...) in
    animation order, each with its ``duration`` in ms (1000 / fps), and one
    ``meta.frameTags`` entry per animation (``from``/``to`` inclusive, ``forward``); a
    one-shot carries ``repeat: "1"`` (Aseprite 1.3; no repeat = loop)."""
    frames: dict[str, Any] = {}
    tags = []
    index = 0
    for clip in clips:
        start = index
        duration = max(1, round(1000 / clip.fps))
        for i in range(len(clip.frames)):
            entry = dict(atlas_data["frames"][frame_name(clip.name, i)])
            entry.pop("anchor", None)
            frames[str(index)] = {**entry, "duration": duration}
            index += 1
        tag = {"name": clip.name, "from": start, "to": index - 1, "direction": "forward", "color": "#000000ff"}
        if not clip.loop:
            tag["repeat"] = "1"
        tags.append(tag)
    meta = atlas_data["meta"]
    return {
        "frames": frames,
        "meta": {
            "app": "fal-assets (Aseprite JSON)", "version": __version__, "image": meta["image"], "format": "RGBA8888",
            "size": meta["size"], "scale": "1", "frameTags": tags, "layers": [{"name": "character", "opacity": 255, "blendMode": "normal"}],
            "slices": [],
        },
    }


def godot_animations(clips: Sequence[Clip], atlas_data: Mapping[str, Any], image_res_path: str = "res://animations.png") -> str:
    """A Godot 4 ``SpriteFrames`` (.tres): one AtlasTexture per frame, one animation per
    clip with all its frames in order, ``speed`` = fps and its ``loop`` flag. Trimmed
    frames keep the canvas through the AtlasTexture ``margin`` (frames stay aligned)."""
    frames = atlas_data["frames"]
    total = sum(len(c.frames) for c in clips)
    lines = [f"[gd_resource type=\"SpriteFrames\" load_steps={total + 2} format=3]", ""]
    lines += [f"[ext_resource type=\"Texture2D\" path={_gd_string(image_res_path)} id=\"1_sheet\"]", ""]
    animations, sub = [], 0
    for clip in clips:
        entries = []
        for i in range(len(clip.frames)):
            sub += 1
            frame = frames[frame_name(clip.name, i)]
            rect, source, full = frame["frame"], frame["spriteSourceSize"], frame["sourceSize"]
            sub_id = f"AtlasTexture_{sub}"
            lines += [f"[sub_resource type=\"AtlasTexture\" id=\"{sub_id}\"]", "atlas = ExtResource(\"1_sheet\")",
                      f"region = Rect2({rect['x']}, {rect['y']}, {rect['w']}, {rect['h']})"]
            if frame.get("trimmed"):
                lines.append(f"margin = Rect2({source['x']}, {source['y']}, {full['w'] - source['w']}, {full['h'] - source['h']})")
            lines += ["filter_clip = true", ""]
            entries.append(f"{{\n\"duration\": 1.0,\n\"texture\": SubResource(\"{sub_id}\")\n}}")
        animations.append(
            "{\n"
            f"\"frames\": [{', '.join(entries)}],\n"
            f"\"loop\": {'true' if clip.loop else 'false'},\n"
            f"\"name\": &{_gd_string(clip.name)},\n"
            f"\"speed\": {float(clip.fps)}\n"
            "}"
        )
    lines += ["[resource]", "animations = [" + ", ".join(animations) + "]", ""]
    return "\n".join(lines)


def preview_frames(clip: Clip, max_side: int = 256, background=(255, 255, 255)) -> list[Image.Image]:
    """The clip's frames fitted within ``max_side`` px over a flat background (for a GIF)."""
    w, h = clip.frames[0].size
    f = min(1.0, max_side / max(w, h))
    size = (max(1, round(w * f)), max(1, round(h * f)))
    out = []
    for frame in clip.frames:
        flat = Image.new("RGBA", size, (*background, 255))
        flat.alpha_composite(resize_rgba(frame, size))
        out.append(flat.convert("RGB"))
    return out


def gif_bytes(clip: Clip, max_side: int = 256) -> bytes:
    """An animated GIF of the clip (its fps; looping, or played once)."""
    import io

    frames = preview_frames(clip, max_side)
    buffer = io.BytesIO()
    options = {"loop": 0} if clip.loop else {}
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=max(20, round(1000 / clip.fps)),
                   disposal=2, optimize=False, **options)
    return buffer.getvalue()


def webp_bytes(clip: Clip) -> bytes:
    """An animated, lossless WebP of the clip with its transparency."""
    import io

    buffer = io.BytesIO()
    clip.frames[0].save(buffer, format="WEBP", save_all=True, append_images=list(clip.frames[1:]), duration=max(1, round(1000 / clip.fps)),
                        loop=0 if clip.loop else 1, lossless=True, method=4)
    return buffer.getvalue()


@dataclass
class AnimationSheet:
    """What ``write_exports`` wrote for one character."""

    atlas_png: Path
    atlas_json: Path
    aseprite_json: Path
    godot: Path
    previews: dict[str, Path]
    webps: dict[str, Path]
    atlas_size: tuple[int, int]
    frames: int
    clips: dict[str, dict[str, Any]]


def write_exports(clips: Sequence[Clip], character_dir: Path, *, stem: str = "animations") -> AnimationSheet:
    """Every export of a character's animations under ``character_dir`` (module doc), atomically."""
    character_dir = Path(character_dir)
    if not clips:
        raise InvalidInput([Problem(str(character_dir), "animations", "no animation to export")])
    image, data = pack_clips(clips, image_name=f"{stem}.png")
    png = atomic.save_image(character_dir / f"{stem}.png", image)
    atlas_json = atomic.write_text(character_dir / f"{stem}.json", json.dumps(data, indent=2) + "\n")
    ase = atomic.write_text(character_dir / f"{stem}.aseprite.json", json.dumps(aseprite_json(clips, data), indent=2) + "\n")
    tres = atomic.write_text(character_dir / f"{stem}.tres", godot_animations(clips, data, f"res://{stem}.png"))
    previews, webps = {}, {}
    for clip in clips:
        previews[clip.name] = atomic.write_bytes(character_dir / stem / f"{clip.name}.gif", gif_bytes(clip))
        webps[clip.name] = atomic.write_bytes(character_dir / stem / f"{clip.name}.webp", webp_bytes(clip))
    summary = {c.name: {"frames": len(c.frames), "fps": c.fps, "loop": c.loop, "canvas": list(c.frames[0].size)} for c in clips}
    return AnimationSheet(png, atlas_json, ase, tres, previews, webps, image.size, sum(len(c.frames) for c in clips), summary)


def load_clip(folder: Path, name: str) -> Clip:
    """An animation's normalised frames back from ``write_frames``'s folder."""
    folder = Path(folder)
    try:
        info = json.loads((folder / "animation.json").read_text())
    except (OSError, ValueError):
        raise InvalidInput([Problem(str(folder), name, "no normalised frames yet; materialize animation_sprites first")]) from None
    frames = []
    for i in range(int(info["frames"])):
        with Image.open(folder / f"{i:03d}.png") as image:
            frames.append(image.convert("RGBA"))
    return Clip(name, frames, float(info["fps"]), bool(info["loop"]), tuple(info["pivot"]))


# --------------------------------------------------------------------------- quality rules


def _alpha(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGBA"))[..., 3]


def canvas_problems(frames: Sequence[Image.Image], baseline: int | None = None, *, grounded: bool = True, tolerance: int = 2) -> list[str]:
    """Frames share one canvas; none reaches below the baseline, and (a grounded
    animation) some frame stands on it."""
    if not frames:
        return ["no frames"]
    sizes = {f.size for f in frames}
    problems = []
    if len(sizes) != 1:
        problems.append(f"frames differ in size: {', '.join(f'{w}x{h}' for w, h in sorted(sizes))}")
    if baseline is None:
        return problems
    lows = []
    for i, frame in enumerate(frames):
        rows = np.flatnonzero((_alpha(frame) > ALPHA).any(axis=1))
        if rows.size == 0:
            continue
        lows.append(int(rows[-1]) + 1)
        if rows[-1] + 1 > baseline + tolerance:
            problems.append(f"frame {i:03d} reaches {rows[-1] + 1 - baseline} px below the baseline")
    if grounded and lows and min(baseline - low for low in lows) > tolerance:
        problems.append(f"no frame stands on the baseline (the nearest is {min(baseline - low for low in lows)} px above it)")
    return problems


def frame_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of premultiplied RGBA, 0..255, over the pixels either covers."""
    x = np.asarray(a.convert("RGBA"), dtype=np.float32)
    y = np.asarray(b.convert("RGBA"), dtype=np.float32)
    if x.shape != y.shape:
        return 255.0
    xa, ya = x[..., 3:] / 255.0, y[..., 3:] / 255.0
    px = np.concatenate([x[..., :3] * xa, x[..., 3:]], axis=-1)
    py = np.concatenate([y[..., :3] * ya, y[..., 3:]], axis=-1)
    covered = (x[..., 3] > ALPHA) | (y[..., 3] > ALPHA)
    if not covered.any():
        return 0.0
    return float(np.abs(px - py)[covered].mean())


def loop_problems(frames: Sequence[Image.Image], *, factor: float = 2.0, floor: float = 6.0) -> tuple[list[str], dict[str, float]]:
    """A loop's last frame leads back to its first: their difference is at most ``factor``
    times the median difference between neighbouring frames (or ``floor``, for a calm idle)."""
    if len(frames) < 2:
        return [], {}
    steps = [frame_difference(a, b) for a, b in zip(frames, frames[1:])]
    closing = frame_difference(frames[-1], frames[0])
    limit = max(factor * statistics.median(steps), floor)
    measured = {"closing": round(closing, 3), "median_step": round(statistics.median(steps), 3), "limit": round(limit, 3)}
    if closing > limit:
        return [f"the last frame does not lead back to the first: difference {closing:.1f} > {limit:.1f} "
                f"({factor:g} x the median step {statistics.median(steps):.1f})"], measured
    return [], measured


def frame_problems(cutouts: Sequence[Image.Image], *, min_share: float = 0.005, border: int = 2) -> list[str]:
    """No frame is empty (too little of it is the character) or clipped (the character
    touches the edge of the generated image, so part of it is missing)."""
    problems = []
    for i, frame in enumerate(cutouts):
        alpha = _alpha(frame)
        share = float((alpha > 127).mean())
        if share < min_share:
            problems.append(f"frame {i:03d}: empty ({share:.2%} of it is the character)")
            continue
        edge = np.concatenate([alpha[:border].ravel(), alpha[-border:].ravel(), alpha[:, :border].ravel(), alpha[:, -border:].ravel()])
        if (edge > 127).mean() > 0.01:
            problems.append(f"frame {i:03d}: clipped (the character touches the edge of the picture)")
    return problems


# --------------------------------------------------------------------------- one function per asset


@dataclass
class AnimationSprites:
    """One animation cut out and normalised: its frames, canvas and what the rules found."""

    name: str
    paths: list[Path]
    canvas: AnimationCanvas
    methods: list[str]
    cache_hits: int
    fps: float
    loop: bool
    problems: dict[str, list[str]]
    loop_measure: dict[str, float]


def animation_sprites(spec, name: str, frames_dir: Path, cutouts_dir: Path, out_dir: Path, cutter, character: CharacterScale) -> AnimationSprites:
    """Cut each raw frame out (reused when the frame and the cutter are unchanged), put
    them on the animation's canvas at the character's scale and baseline, write them with
    ``animation.json``, and apply the quality rules."""
    from .pipeline import sprite

    animation = spec.animation(name)
    frames_dir, cutouts_dir = Path(frames_dir), Path(cutouts_dir)
    raw = [frames_dir / f"{i:03d}.png" for i in range(animation.frames)]
    missing = [p.name for p in raw if not p.is_file()]
    if missing:
        raise InvalidInput([Problem(str(frames_dir), f"animations.{name}", f"no raw frame {', '.join(missing)} yet; materialize animation_frames first")])
    made = [sprite(p, cutouts_dir / p.name, cutter) for p in raw]
    for stale in cutouts_dir.glob("*.png"):
        if stale.name not in {p.name for p in raw}:
            stale.unlink()
    cutouts = []
    for m in made:
        with Image.open(m.path) as image:
            cutouts.append(image.convert("RGBA"))
    problems = {"frames": frame_problems(cutouts)}
    canvas = normalise_frames(name, cutouts, character)
    paths = write_frames(canvas, out_dir, fps=animation.fps, loop=animation.loop)
    grounded = spec.pose(spec.animation_pose(name)).stance != "airborne"
    problems["canvas"] = canvas_problems(canvas.frames, canvas.baseline, grounded=grounded)
    loop_found, measure = loop_problems(canvas.frames) if animation.loop else ([], {})
    problems["loop"] = loop_found
    return AnimationSprites(name, paths, canvas, [m.method for m in made], sum(bool(m.details.get("cache_hit")) for m in made),
                            animation.fps, animation.loop, problems, measure)


def animated_sheet(spec, animations_root: Path, character_dir: Path, names: Sequence[str] | None = None) -> AnimationSheet:
    """Every animation of ``spec`` (its normalised frames in ``animations_root/<name>/sprites``)
    in one atlas with its Aseprite, Godot and preview exports; fps and loop come from the
    spec (so a new fps re-exports without touching the frames)."""
    clips = []
    for name in names or list(spec.animations):
        clip = load_clip(Path(animations_root) / name / "sprites", name)
        animation = spec.animation(name)
        clips.append(Clip(name, clip.frames, animation.fps, animation.loop, clip.pivot))
    return write_exports(clips, character_dir)
