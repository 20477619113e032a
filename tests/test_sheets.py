"""Atlas packing, TexturePacker JSON, Godot SpriteFrames and the contact sheet."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest
from PIL import Image

from fal_assets.errors import InvalidInput
from fal_assets.sheets import Atlas, contact_sheet, godot_spriteframes, pack_atlas, write_atlas


def sprite(rng, size, content) -> Image.Image:
    """Random opaque-ish pixels in ``content`` (left, top, right, bottom), transparent around."""
    arr = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    left, top, right, bottom = content
    arr[top:bottom, left:right] = rng.integers(0, 256, (bottom - top, right - left, 4), dtype=np.uint8)
    arr[top:bottom, left:right, 3] |= 1  # every content pixel visible
    return Image.fromarray(arr)


@pytest.fixture(scope="module")
def sprites():
    rng = np.random.default_rng(7)
    out = {}
    for i in range(14):
        w, h = int(rng.integers(20, 180)), int(rng.integers(20, 220))
        left, top = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
        right, bottom = int(rng.integers(left + 1, w + 1)), int(rng.integers(top + 1, h + 1))
        out[f"pose_{i:02d}"] = sprite(rng, (w, h), (left, top, right, bottom))
    out["full"] = sprite(rng, (64, 48), (0, 0, 64, 48))
    out["blank"] = Image.new("RGBA", (30, 30), (0, 0, 0, 0))
    return out


def rect(frame):
    f = frame["frame"]
    return f["x"], f["y"], f["x"] + f["w"], f["y"] + f["h"]


def check_atlas(atlas: Atlas, sprites, padding: int, trim: bool = True):
    sheet = np.asarray(atlas.image)
    width, height = atlas.image.size
    assert set(atlas.frames) == set(sprites)
    covered = np.zeros((height, width), dtype=bool)
    for name, frame in atlas.frames.items():
        x0, y0, x1, y1 = rect(frame)
        assert padding <= x0 and padding <= y0 and x1 <= width - padding and y1 <= height - padding, name
        source, full = frame["spriteSourceSize"], frame["sourceSize"]
        assert (full["w"], full["h"]) == sprites[name].size
        assert (source["w"], source["h"]) == (x1 - x0, y1 - y0)
        expected = sprites[name].crop((source["x"], source["y"], source["x"] + source["w"], source["y"] + source["h"]))
        assert np.array_equal(sheet[y0:y1, x0:x1], np.asarray(expected)), name
        if trim and name != "blank":
            assert sprites[name].getchannel("A").getbbox() == (source["x"], source["y"], source["x"] + source["w"], source["y"] + source["h"])
        assert frame["rotated"] is False
        assert frame["trimmed"] == ((source["x"], source["y"], source["w"], source["h"]) != (0, 0, full["w"], full["h"]))
        covered[y0:y1, x0:x1] = True
    # nothing but the frames is drawn on the sheet
    assert (sheet[..., 3][~covered] == 0).all()
    # no overlaps, and at least `padding` px between frames
    for (a, fa), (b, fb) in itertools.combinations(atlas.frames.items(), 2):
        ax0, ay0, ax1, ay1 = rect(fa)
        bx0, by0, bx1, by1 = rect(fb)
        apart = ax1 + padding <= bx0 or bx1 + padding <= ax0 or ay1 + padding <= by0 or by1 + padding <= ay0
        assert apart, (a, b)


def test_pack_atlas_frames_match_the_sprites(sprites):
    atlas = pack_atlas(sprites, padding=2)
    check_atlas(atlas, sprites, padding=2)
    assert not atlas.frames["full"]["trimmed"]
    assert atlas.frames["blank"]["frame"]["w"] == atlas.frames["blank"]["frame"]["h"] == 1
    meta = atlas.data["meta"]
    assert meta["image"] == "sheet.png" and meta["format"] == "RGBA8888" and meta["scale"] == "1"
    assert meta["size"] == {"w": atlas.image.width, "h": atlas.image.height}
    assert set(meta) >= {"app", "version", "image", "format", "size", "scale"}
    for frame in atlas.frames.values():
        assert set(frame) >= {"frame", "rotated", "trimmed", "spriteSourceSize", "sourceSize", "pivot"}
        assert frame["pivot"] == frame["anchor"] == {"x": 0.5, "y": 0.5}
    # tight: the packed area plus padding, far below the summed power-of-two bin
    area = sum(f["frame"]["w"] * f["frame"]["h"] for f in atlas.frames.values())
    assert atlas.image.width * atlas.image.height < 2.5 * area


def test_pack_atlas_options(sprites):
    pot = pack_atlas(sprites, padding=0, power_of_two=True)
    check_atlas(pot, sprites, padding=0)
    assert all(side & (side - 1) == 0 for side in pot.image.size)

    untrimmed = pack_atlas(sprites, padding=3, trim=False)
    check_atlas(untrimmed, sprites, padding=3, trim=False)
    assert not any(f["trimmed"] for f in untrimmed.frames.values())

    pivots = {"pose_00": (sprites["pose_00"].width / 2, sprites["pose_00"].height - 4)}
    pivoted = pack_atlas(sprites, pivots=pivots)
    w, h = sprites["pose_00"].size
    assert pivoted.frames["pose_00"]["pivot"] == {"x": 0.5, "y": round((h - 4) / h, 6)}

    boxes = [s.getchannel("A").getbbox() or (0, 0, 1, 1) for s in sprites.values()]
    side = max(max(r - l, b - t) for l, t, r, b in boxes) + 4
    assert sum((r - l) * (b - t) for l, t, r, b in boxes) > side * side
    with pytest.raises(InvalidInput, match=f"do not fit in {side}x{side}"):
        pack_atlas(sprites, max_size=side)
    few = {name: sprites[name] for name in ("full", "blank")}
    fits = pack_atlas(few, max_size=100)  # below the first power-of-two bin (128)
    check_atlas(fits, few, padding=2)
    assert fits.image.size[0] <= 100 and fits.image.size[1] <= 100
    assert pack_atlas(few, max_size=200, power_of_two=True).image.size[0] <= 128
    with pytest.raises(InvalidInput, match="larger than max_size"):
        pack_atlas(sprites, max_size=64, trim=False)
    with pytest.raises(InvalidInput) as err:
        pack_atlas({"a b": sprites["full"]}, pivots={"nope": (0, 0)}, padding=-2)
    assert len(err.value.lines()) == 3


def test_godot_spriteframes_lists_every_pose(sprites):
    atlas = pack_atlas(sprites)
    text = godot_spriteframes(atlas, "res://chars/hero/sheet.png")
    assert text.startswith('[gd_resource type="SpriteFrames"')
    assert '[ext_resource type="Texture2D" path="res://chars/hero/sheet.png" id="1_sheet"]' in text
    subs = dict(re.findall(r'\[sub_resource type="AtlasTexture" id="([^"]+)"\]\natlas = ExtResource\("1_sheet"\)\nregion = Rect2\(([^)]*)\)', text))
    names = re.findall(r'"name": &"([^"]+)"', text)
    used = re.findall(r'"texture": SubResource\("([^"]+)"\)', text)
    assert names == list(atlas.frames) and len(used) == len(names) == len(subs)
    for name, sub_id in zip(names, used):
        f = atlas.frames[name]["frame"]
        assert subs[sub_id] == f"{f['x']}, {f['y']}, {f['w']}, {f['h']}"
    assert text.count("margin = Rect2(") == sum(f["trimmed"] for f in atlas.frames.values())
    assert text.count("[") - text.count("]") == 0


def test_write_atlas(sprites, tmp_path):
    atlas = pack_atlas(sprites)
    paths = write_atlas(atlas, tmp_path / "hero", name="hero")
    assert {p.name for p in paths.values()} == {"hero.png", "hero.json", "hero.tres"}
    data = json.loads(paths["json"].read_text())
    assert data["meta"]["image"] == "hero.png" and data["frames"] == atlas.frames
    with Image.open(paths["png"]) as image:
        assert np.array_equal(np.asarray(image.convert("RGBA")), np.asarray(atlas.image))
    assert 'path="res://hero.png"' in paths["tres"].read_text()
    assert sorted(p.name for p in (tmp_path / "hero").iterdir()) == ["hero.json", "hero.png", "hero.tres"]


def test_contact_sheet(sprites):
    chosen = {name: sprites[name] for name in ("pose_00", "pose_01", "full", "blank", "pose_02")}
    sheet = contact_sheet(chosen, columns=3, cell=128)
    assert sheet.mode == "RGB" and sheet.width == 3 * 128
    label_h = sheet.height // 2 - 128
    assert 8 < label_h < 40
    arr = np.asarray(sheet)
    # the blank sprite's cell shows the checkerboard: two greys
    blank = arr[128 + label_h : 2 * 128 + label_h, 0:128]
    assert {tuple(c) for c in blank.reshape(-1, 3)} == {(255, 255, 255), (204, 204, 204)}
    # each used cell has dark label pixels under it; the unused sixth cell has none
    for index in range(6):
        x0, y0 = (index % 3) * 128, (index // 3) * (128 + label_h) + 128
        strip = arr[y0 : y0 + label_h, x0 : x0 + 128]
        assert (strip.min() < 100) == (index < 5), index
    unlabelled = contact_sheet(chosen, columns=2, cell=64, label=False)
    assert unlabelled.size == (128, 3 * 64)
