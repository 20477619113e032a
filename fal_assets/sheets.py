"""Sprite sheets: a packed atlas with TexturePacker JSON, a Godot SpriteFrames, a contact sheet.

The atlas JSON is TexturePacker's "JSON (Hash)" layout, which Phaser 3
(``load.atlas``) and PixiJS (``Assets.load`` / ``Spritesheet``) read as it is. Each
frame carries its pivot twice, as ``pivot`` (TexturePacker, Phaser >= 3.60) and as
``anchor`` (PixiJS, older Phaser), normalised to the untrimmed sprite (0..1).

Packing: rectpack's MaxRects (best short side fit), no rotation, ``padding`` px
between sprites and around the edge. The bin starts at the smallest power-of-two
size that could hold the sprites and doubles its shorter side until they fit (up to
``max_size``). With ``power_of_two=True`` the sheet keeps that size, at most the
largest power of two within ``max_size`` (for old GPUs or mipmaps);
otherwise it is cropped to the packed area plus padding (tight; WebGL2, Phaser,
PixiJS and Godot 4 take any size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import __version__
from .atomic import save_image, write_json, write_text
from .errors import InvalidInput, Problem
from .normalise import POSE_NAME, resize_rgba


@dataclass(frozen=True)
class Atlas:
    """A packed sheet: the image and its TexturePacker JSON-hash data."""

    image: Image.Image
    data: dict[str, Any]

    @property
    def frames(self) -> dict[str, dict[str, Any]]:
        return self.data["frames"]

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def _next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def _pack(sizes: dict[str, tuple[int, int]], width: int, height: int, padding: int) -> dict[str, tuple[int, int]] | None:
    """Top-left corners in a ``width`` x ``height`` sheet, or None when they do not fit."""
    from rectpack import MaxRectsBssf, PackingBin, PackingMode, SORT_AREA, newPacker

    packer = newPacker(mode=PackingMode.Offline, bin_algo=PackingBin.BFF, pack_algo=MaxRectsBssf, sort_algo=SORT_AREA, rotation=False)
    for name, (w, h) in sizes.items():
        packer.add_rect(w + padding, h + padding, rid=name)
    packer.add_bin(width - padding, height - padding)
    packer.pack()
    placed = {rid: (x + padding, y + padding) for _, x, y, _, _, rid in packer.rect_list()}
    return placed if len(placed) == len(sizes) else None


def pack_atlas(
    sprites: Mapping[str, Image.Image],
    *,
    padding: int = 2,
    max_size: int = 8192,
    trim: bool = True,
    pivots: Mapping[str, tuple[float, float]] | None = None,
    power_of_two: bool = False,
) -> Atlas:
    """Pack sprites into one sheet (see module doc).

    ``trim`` crops each sprite to its visible pixels (alpha > 0) and records the
    offset in ``spriteSourceSize``; ``pivots`` gives a pivot per sprite in its own
    (untrimmed) px, e.g. ``NormalisedSet.pivots``; the default pivot is the centre.
    """
    where = "sheets"
    problems = []
    if not sprites:
        problems.append(Problem(where, "sprites", "nothing to pack; at least one sprite is needed"))
    for name in sprites:
        if not isinstance(name, str) or not POSE_NAME.match(name):
            problems.append(Problem(where, f"sprites.{name}", "a frame name is 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"))
    for name in pivots or {}:
        if name not in sprites:
            problems.append(Problem(where, f"pivots.{name}", f"no sprite named {name!r}"))
    if not (isinstance(padding, int) and 0 <= padding <= 64):
        problems.append(Problem(where, "padding", f"{padding!r}: a whole number of px from 0 to 64 is allowed"))
    if not (isinstance(max_size, int) and 1 <= max_size <= 16384):
        problems.append(Problem(where, "max_size", f"{max_size!r}: a whole number of px from 1 to 16384 is allowed"))
    if problems:
        raise InvalidInput(problems)

    if power_of_two:
        max_size = 1 << (max_size.bit_length() - 1)  # the largest power of two within it
    crops: dict[str, Image.Image] = {}
    sources: dict[str, tuple[int, int, int, int]] = {}
    for name, sprite in sprites.items():
        sprite = sprite.convert("RGBA")
        box = sprite.getchannel("A").getbbox() if trim else (0, 0, sprite.width, sprite.height)
        if box is None:  # fully transparent: keep one transparent pixel
            box = (0, 0, 1, 1)
        crops[name] = sprite.crop(box)
        sources[name] = box

    sizes = {name: crop.size for name, crop in crops.items()}
    too_big = [n for n, (w, h) in sizes.items() if max(w, h) + 2 * padding > max_size]
    if too_big:
        raise InvalidInput([Problem(where, f"sprites.{n}", f"{sizes[n][0]}x{sizes[n][1]} px (+{padding} px padding) is larger than max_size {max_size}") for n in too_big])
    area = sum((w + padding) * (h + padding) for w, h in sizes.values())
    width = min(_next_pow2(max(max(w for w, _ in sizes.values()) + 2 * padding, math.isqrt(area))), max_size)
    height = min(_next_pow2(max(max(h for _, h in sizes.values()) + 2 * padding, math.ceil(area / width))), max_size)
    while True:
        placed = _pack(sizes, width, height, padding)
        if placed is not None:
            break
        if width >= max_size and height >= max_size:
            raise InvalidInput([Problem(where, "max_size", f"{len(sizes)} sprites do not fit in {max_size}x{max_size} px; raise max_size or split the sheet")])
        if width <= height and width < max_size:
            width = min(width * 2, max_size)
        else:
            height = min(height * 2, max_size)

    if not power_of_two:
        width = max(x + sizes[n][0] for n, (x, _) in placed.items()) + padding
        height = max(y + sizes[n][1] for n, (_, y) in placed.items()) + padding
    sheet = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    frames: dict[str, Any] = {}
    for name, crop in crops.items():
        x, y = placed[name]
        sheet.paste(crop, (x, y))
        sw, sh = sprites[name].size
        left, top, right, bottom = sources[name]
        px, py = (pivots or {}).get(name, (sw / 2, sh / 2))
        pivot = {"x": round(px / sw, 6), "y": round(py / sh, 6)}
        frames[name] = {
            "frame": {"x": x, "y": y, "w": crop.width, "h": crop.height},
            "rotated": False,
            "trimmed": (left, top, right, bottom) != (0, 0, sw, sh),
            "spriteSourceSize": {"x": left, "y": top, "w": right - left, "h": bottom - top},
            "sourceSize": {"w": sw, "h": sh},
            "pivot": pivot,
            "anchor": dict(pivot),
        }
    meta = {
        "app": "fal-assets",
        "version": __version__,
        "image": "sheet.png",
        "format": "RGBA8888",
        "size": {"w": width, "h": height},
        "scale": "1",
    }
    return Atlas(image=sheet, data={"frames": frames, "meta": meta})


def _gd_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def godot_spriteframes(atlas: Atlas, image_res_path: str = "res://sheet.png", *, speed: float = 5.0, loop: bool = True) -> str:
    """A Godot 4 ``SpriteFrames`` resource (.tres): one AtlasTexture and one animation per frame.

    Trimmed frames keep their untrimmed size through the AtlasTexture ``margin``, so
    poses normalised onto one canvas stay aligned in an ``AnimatedSprite2D``.
    """
    frames = atlas.frames
    lines = [f"[gd_resource type=\"SpriteFrames\" load_steps={len(frames) + 2} format=3]", ""]
    lines += [f"[ext_resource type=\"Texture2D\" path={_gd_string(image_res_path)} id=\"1_sheet\"]", ""]
    animations = []
    for index, (name, frame) in enumerate(frames.items(), start=1):
        rect, source, full = frame["frame"], frame["spriteSourceSize"], frame["sourceSize"]
        sub_id = f"AtlasTexture_{index}"
        lines += [
            f"[sub_resource type=\"AtlasTexture\" id=\"{sub_id}\"]",
            "atlas = ExtResource(\"1_sheet\")",
            f"region = Rect2({rect['x']}, {rect['y']}, {rect['w']}, {rect['h']})",
        ]
        if frame.get("trimmed"):
            lines.append(f"margin = Rect2({source['x']}, {source['y']}, {full['w'] - source['w']}, {full['h'] - source['h']})")
        lines += ["filter_clip = true", ""]
        animations.append(
            "{\n"
            f"\"frames\": [{{\n\"duration\": 1.0,\n\"texture\": SubResource(\"{sub_id}\")\n}}],\n"
            f"\"loop\": {'true' if loop else 'false'},\n"
            f"\"name\": &{_gd_string(name)},\n"
            f"\"speed\": {float(speed)}\n"
            "}"
        )
    lines += ["[resource]", "animations = [" + ", ".join(animations) + "]", ""]
    return "\n".join(lines)


def write_atlas(atlas: Atlas, out_dir: str | Path, *, name: str = "sheet", godot: bool = True, image_res_path: str | None = None) -> dict[str, Path]:
    """Write ``<name>.png``, ``<name>.json`` (and ``<name>.tres``) atomically; returns the paths."""
    if not POSE_NAME.match(name):
        raise InvalidInput([Problem("sheets", "name", f"{name!r} is not a file stem; letters, digits, '_', '-' or '.' are allowed")])
    out_dir = Path(out_dir)
    data = {"frames": atlas.frames, "meta": {**atlas.data["meta"], "image": f"{name}.png"}}
    paths = {
        "png": save_image(out_dir / f"{name}.png", atlas.image),
        "json": write_json(out_dir / f"{name}.json", data),
    }
    if godot:
        paths["tres"] = write_text(out_dir / f"{name}.tres", godot_spriteframes(atlas, image_res_path or f"res://{name}.png"))
    return paths


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _checkerboard(width: int, height: int, square: int = 8) -> Image.Image:
    ys, xs = np.mgrid[0:height, 0:width]
    light = ((xs // square + ys // square) % 2).astype(bool)
    grey = np.where(light, 255, 204).astype(np.uint8)
    return Image.fromarray(np.dstack([grey, grey, grey, np.full_like(grey, 255)]))


def contact_sheet(sprites: Mapping[str, Image.Image], *, columns: int | None = None, cell: int = 256, label: bool = True) -> Image.Image:
    """Every sprite on one RGB image, fitted to a ``cell`` px square on a checkerboard, named underneath."""
    if not sprites:
        raise InvalidInput([Problem("sheets", "sprites", "nothing to show; at least one sprite is needed")])
    if not (isinstance(cell, int) and 16 <= cell <= 4096):
        raise InvalidInput([Problem("sheets", "cell", f"{cell!r}: a whole number of px from 16 to 4096 is allowed")])
    count = len(sprites)
    columns = max(1, min(columns or math.ceil(math.sqrt(count)), count))
    rows = math.ceil(count / columns)
    font = _font(max(10, cell // 16))
    label_h = 0
    if label:
        top, bottom = font.getbbox("Ag")[1::2]
        label_h = bottom - top + 8
    sheet = Image.new("RGB", (columns * cell, rows * (cell + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    margin = max(2, cell // 32)
    board = _checkerboard(cell, cell, max(4, cell // 32))
    for index, (name, sprite) in enumerate(sprites.items()):
        x0, y0 = (index % columns) * cell, (index // columns) * (cell + label_h)
        sprite = sprite.convert("RGBA")
        fit = min((cell - 2 * margin) / sprite.width, (cell - 2 * margin) / sprite.height)
        size = (max(1, round(sprite.width * fit)), max(1, round(sprite.height * fit)))
        tile = board.copy()
        tile.alpha_composite(resize_rgba(sprite, size), ((cell - size[0]) // 2, (cell - size[1]) // 2))
        sheet.paste(tile.convert("RGB"), (x0, y0))
        if label:
            text = name
            while draw.textlength(text, font=font) > cell - 4 and len(text) > 1:
                text = text[:-2] + "…"
            width = draw.textlength(text, font=font)
            draw.text((x0 + (cell - width) / 2, y0 + cell + 3), text, fill=(0, 0, 0), font=font)
    return sheet
