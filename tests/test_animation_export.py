"""Animated sprites out: one canvas per animation at the character's scale and baseline,
the atlas, Aseprite JSON and Godot SpriteFrames read back the way the engines read them,
and the quality rules."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fal_assets import animation_export as ex
from fal_assets.errors import InvalidInput


def figure(size=(200, 260), x=100, top=40, bottom=230, width=40, colour=(200, 40, 40, 255), leg=0):
    """A transparent frame with a simple figure: a body and two legs apart by ``leg``."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle([x - width // 2, top, x + width // 2, bottom - 60], fill=colour)
    draw.rectangle([x - 12 - leg, bottom - 60, x - 4 - leg, bottom], fill=colour)
    draw.rectangle([x + 4 + leg, bottom - 60, x + 12 + leg, bottom], fill=colour)
    return image


def cycle(n=6, **kw):
    return [figure(leg=int(round(10 * np.cos(2 * np.pi * i / n))) + 10, **kw) for i in range(n)]


def test_one_canvas_character_scale_and_one_baseline():
    character = ex.CharacterScale(scale=0.5, height=95, source_width=200)
    run = ex.normalise_frames("run", cycle(6, x=60), character)
    idle = ex.normalise_frames("idle", [figure(x=140) for _ in range(3)], character)
    for anim in (run, idle):
        assert {f.size for f in anim.frames} == {anim.canvas}
        assert anim.baseline == anim.canvas[1] - ex.PADDING and anim.pivot == (anim.canvas[0] // 2, anim.baseline)
        heights = {b[3] - b[1] for b in anim.boxes}
        assert heights == {96}  # 191 source px at the character's scale 0.5
        assert all(b[3] == anim.baseline for b in anim.boxes)  # feet on the baseline in every frame
        assert not ex.canvas_problems(anim.frames, anim.baseline)
    # wherever the figure stood in its source picture, it is centred on the pivot
    assert abs((run.boxes[0][0] + run.boxes[0][2]) / 2 - run.pivot[0]) <= 1
    # a video clip twice the pose image's width is scaled by half again: same size on screen
    big = [f.resize((400, 520)) for f in cycle(3)]
    clip = ex.normalise_frames("clip", big, character)
    assert {b[3] - b[1] for b in clip.boxes} == {96}


def test_a_jump_keeps_its_height_above_the_ground():
    frames = [figure(top=40 - up, bottom=230 - up) for up in (0, 40, 80, 40)]
    jump = ex.normalise_frames("jump", frames, ex.CharacterScale(1.0, 190))
    lows = [b[3] for b in jump.boxes]
    assert lows == [jump.baseline, jump.baseline - 40, jump.baseline - 80, jump.baseline - 40]
    assert ex.canvas_problems(jump.frames, jump.baseline) == []
    assert ex.canvas_problems(jump.frames[1:2], jump.baseline, grounded=True)[0].startswith("no frame stands on the baseline")


def test_quality_rules():
    closing = cycle(6)
    assert ex.loop_problems(closing)[0] == []
    broken = closing[:-1] + [figure(x=60, leg=30, colour=(40, 40, 200, 255))]
    found, measured = ex.loop_problems(broken)
    assert found and "does not lead back" in found[0] and measured["closing"] > measured["limit"]
    empty = Image.new("RGBA", (200, 260))
    clipped = figure(x=10)
    problems = ex.frame_problems([figure(), empty, clipped])
    assert problems == ["frame 001: empty (0.00% of it is the character)", "frame 002: clipped (the character touches the edge of the picture)"]
    assert ex.canvas_problems([figure(), figure(size=(100, 100))])[0].startswith("frames differ in size")
    with pytest.raises(InvalidInput, match="run/001: the frame is empty"):
        ex.normalise_frames("run", [figure(), empty], ex.CharacterScale(1.0, 190))


@pytest.fixture
def exported(tmp_path):
    character = ex.CharacterScale(0.5, 95, 200)
    run = ex.normalise_frames("run", cycle(6), character)
    idle = ex.normalise_frames("idle", [figure(leg=i) for i in range(4)], character)
    clips = [ex.Clip("run", run.frames, 12.0, True, run.pivot), ex.Clip("idle", idle.frames, 5.0, False, idle.pivot)]
    return clips, ex.write_exports(clips, tmp_path / "hero")


def test_atlas_names_frames_by_animation_and_index(exported):
    clips, sheet = exported
    data = json.loads(sheet.atlas_json.read_text())
    assert list(data["frames"]) == [f"run/{i:03d}" for i in range(6)] + [f"idle/{i:03d}" for i in range(4)]
    assert data["meta"]["image"] == "animations.png"
    with Image.open(sheet.atlas_png) as atlas:
        size = atlas.size
        pixels = np.asarray(atlas.convert("RGBA"))
    for name, frame in data["frames"].items():
        r = frame["frame"]
        assert r["x"] + r["w"] <= size[0] and r["y"] + r["h"] <= size[1]
        clip = clips[0] if name.startswith("run/") else clips[1]
        source = np.asarray(clip.frames[int(name[-3:])])
        s = frame["spriteSourceSize"]
        assert np.array_equal(pixels[r["y"]:r["y"] + r["h"], r["x"]:r["x"] + r["w"]], source[s["y"]:s["y"] + s["h"], s["x"]:s["x"] + s["w"]])
        assert frame["sourceSize"] == {"w": clip.frames[0].width, "h": clip.frames[0].height}
        assert frame["pivot"]["y"] == round(clip.pivot[1] / clip.frames[0].height, 6)


def phaser_create_from_aseprite(data):
    """What Phaser 3's AnimationManager.createFromAseprite builds (its algorithm, in Python):
    for each frameTag, frames[str(i)] for i in from..to, with their durations."""
    made = {}
    for tag in data["meta"]["frameTags"]:
        frames = [str(i) for i in range(tag["from"], tag["to"] + 1) if str(i) in data["frames"]]
        durations = [data["frames"][key]["duration"] for key in frames]
        made[tag["name"]] = {"frames": frames, "duration": sum(durations)}
    return made


def test_aseprite_json_plays_each_animation_in_order(exported):
    clips, sheet = exported
    data = json.loads(sheet.aseprite_json.read_text())
    atlas = json.loads(sheet.atlas_json.read_text())
    made = phaser_create_from_aseprite(data)
    assert made["run"]["frames"] == [str(i) for i in range(6)] and made["idle"]["frames"] == ["6", "7", "8", "9"]
    assert made["run"]["duration"] == 6 * 83 and made["idle"]["duration"] == 4 * 200  # 1000 / fps ms a frame
    tags = {t["name"]: t for t in data["meta"]["frameTags"]}
    assert "repeat" not in tags["run"] and tags["idle"]["repeat"] == "1" and tags["run"]["direction"] == "forward"
    assert data["frames"]["7"]["frame"] == atlas["frames"]["idle/001"]["frame"]  # the same picture in the same atlas
    assert data["meta"]["image"] == "animations.png" and data["meta"]["size"] == atlas["meta"]["size"]


def parse_tres(text):
    """A small reader of Godot's text resource format: sub_resources and the animations."""
    assert text.startswith('[gd_resource type="SpriteFrames"') and text.count("[") == text.count("]")
    subs = {}
    for sub_id, body in re.findall(r'\[sub_resource type="AtlasTexture" id="([^"]+)"\]\n(.*?)\n\n', text, re.S):
        region = re.search(r"region = Rect2\(([^)]*)\)", body).group(1)
        subs[sub_id] = [float(v) for v in region.split(",")]
    body = text.split("[resource]\n", 1)[1]
    animations = []
    for block in re.findall(r'\{\n"frames": \[(.*?)\],\n"loop": (true|false),\n"name": &"([^"]+)",\n"speed": ([0-9.]+)\n\}', body, re.S):
        frames, loop, name, speed = block
        animations.append({"name": name, "loop": loop == "true", "speed": float(speed),
                           "textures": re.findall(r'SubResource\("([^"]+)"\)', frames)})
    return subs, animations


def test_godot_spriteframes_one_animation_per_name_with_fps_and_loop(exported):
    clips, sheet = exported
    subs, animations = parse_tres(sheet.godot.read_text())
    assert [(a["name"], a["speed"], a["loop"], len(a["textures"])) for a in animations] == [("run", 12.0, True, 6), ("idle", 5.0, False, 4)]
    assert 'path="res://animations.png"' in sheet.godot.read_text()
    with Image.open(sheet.atlas_png) as atlas:
        w, h = atlas.size
    atlas_frames = json.loads(sheet.atlas_json.read_text())["frames"]
    for anim in animations:
        for i, sub_id in enumerate(anim["textures"]):
            x, y, rw, rh = subs[sub_id]
            assert 0 <= x and 0 <= y and x + rw <= w and y + rh <= h  # every region inside the sheet
            f = atlas_frames[f"{anim['name']}/{i:03d}"]["frame"]
            assert [x, y, rw, rh] == [f["x"], f["y"], f["w"], f["h"]]


def test_previews_are_animated(exported):
    clips, sheet = exported
    with Image.open(sheet.previews["run"]) as gif:
        assert gif.is_animated and gif.n_frames == 6 and gif.info["duration"] in (80, 90) and gif.info.get("loop") == 0
    with Image.open(sheet.webps["idle"]) as webp:
        assert webp.is_animated and webp.n_frames == 4 and webp.mode == "RGBA"
