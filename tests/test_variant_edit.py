"""Variant edits on the local backend through the journal, and variant sheets that a game
loads like the base's and swaps frame for frame."""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fal_assets import edit, pipeline
from fal_assets.cutout import make_cutter
from fal_assets.errors import InvalidInput
from fal_assets.generate import Settings, generate_all
from fal_assets.prompts import pose_prompt
from fal_assets.quality import palette_misses
from fal_assets.render import render_image
from fal_assets.spec import load_spec
from fal_assets.sprite_sheet import build_sheet
from fal_assets.variants import palette_of, seed_for

SPEC = textwrap.dedent(
    """\
    name: knight
    trigger_word: knight_char
    description: a small knight with short hair, a bodysuit and glowing circuit lines
    style: flat vector game art
    palette:
      bodysuit: "#2060C0"
      circuit_lines: "#FF1493"
      hair: "#E0B040"
    poses:
      idle: standing relaxed
      jump:
        description: jumping with both knees tucked
        stance: airborne
      crouch:
        description: crouching low, ready to spring
        stance: crouch
    variants:
      cyan:
        instruction: Change the neon glow color from pink to cyan
        palette: {circuit_lines: "#00CED1"}
      team_red:
        instruction: Recolor the bodysuit for the red team
        palette: {bodysuit: "#B01020"}
        poses: [idle, jump]
    """
)
SIZE = (384, 512)


@pytest.fixture(scope="module")
def character(tmp_path_factory):
    """A spec, its base pose images, cutouts and base sheet (made once for the module)."""
    root = tmp_path_factory.mktemp("variants")
    (root / "knight.yaml").write_text(SPEC)
    spec = load_spec(root / "knight.yaml")
    base = root / "output" / "knight"
    cutter = make_cutter("key")
    (base / "poses_raw").mkdir(parents=True)
    for pose in spec.poses:
        image = render_image({"prompt": pose_prompt(spec, pose), "image_size": {"width": SIZE[0], "height": SIZE[1]}, "seed": spec.seed_for(pose)})
        image.save(base / "poses_raw" / f"{pose}.png")
        pipeline.sprite(base / "poses_raw" / f"{pose}.png", base / "cutouts" / f"{pose}.png", cutter)
    build_sheet(spec, base / "cutouts", base)
    return spec, root, base


def settings(root: Path) -> Settings:
    return Settings(backend="local", store_root=root / ".fal-assets" / "store")


def make_variant(spec, root, base, name, poses=None):
    out = base / "variants" / name
    made = edit.variant_images(spec, name, poses or list(spec.variants[name].poses or spec.poses), base / "poses_raw",
                               out / "poses_raw", lambda requests: generate_all(requests, settings(root)))
    return out, made


def test_each_edit_sends_the_base_image_and_records_what_it_cost(character):
    spec, root, base = character
    out, made = make_variant(spec, root, base, "cyan")
    assert list(made) == ["idle", "jump", "crouch"]
    for pose, image in made.items():
        assert not isinstance(image, BaseException), image
        gen = image.generation
        assert gen.endpoint == "fal-ai/flux-pro/kontext" and gen.backend == "local"
        assert gen.seed == seed_for(spec, pose, "cyan")
        assert gen.cost_usd == 0.0 and gen.cost_kind == "estimated" and gen.estimate["cost_usd"] == 0.04  # $0.04 per image on fal
        assert gen.arguments["image_url"] == "sha256:" + hashlib.sha256((base / "poses_raw" / f"{pose}.png").read_bytes()).hexdigest()
        assert gen.arguments["aspect_ratio"] == "3:4"
        assert image.input_sha256 == hashlib.sha256(image.input_path.read_bytes()).hexdigest()
        # Kontext answers about 1 MP at the input's ratio; the variant is put back on the base's frame
        assert image.output_size != SIZE and image.conformed
        with Image.open(image.path) as saved:
            assert saved.size == SIZE
        assert image.path == out / "poses_raw" / f"{pose}.png"
    # the instruction and the palette were applied: the new colour is there, the old one gone
    for pose in made:
        cut = pipeline.sprite(made[pose].path, out / "cutouts" / f"{pose}.png", make_cutter("key"))
        assert "circuit_lines" not in palette_misses(cut.path, palette_of(spec, "cyan"))
        assert "circuit_lines" in palette_misses(cut.path, {"circuit_lines": "#FF1493"})


def test_a_rerun_is_a_journal_hit_and_byte_identical(character):
    spec, root, base = character
    _, first = make_variant(spec, root, base, "team_red")
    before = {pose: image.path.read_bytes() for pose, image in first.items()}
    _, again = make_variant(spec, root, base, "team_red")
    assert all(image.generation.cache_hit for image in again.values())
    assert {pose: image.path.read_bytes() for pose, image in again.items()} == before
    assert list(again) == ["idle", "jump"]  # the variant's own poses


def test_a_new_base_image_is_a_new_request(character, tmp_path):
    spec, root, base = character
    copy = tmp_path / "base"
    (copy / "poses_raw").mkdir(parents=True)
    image = render_image({"prompt": pose_prompt(spec, "idle") + " Hair #AA3300.", "image_size": {"width": SIZE[0], "height": SIZE[1]}, "seed": 3})
    image.save(copy / "poses_raw" / "idle.png")
    _, made = make_variant(spec, root, copy, "cyan", ["idle"])
    assert not made["idle"].generation.cache_hit
    _, made = make_variant(spec, root, base, "cyan", ["idle"])
    assert made["idle"].generation.cache_hit  # the old base's edit is still in the journal


def test_a_refused_variant_sends_nothing(tmp_path):
    (tmp_path / "knight.yaml").write_text(SPEC.replace("palette: {bodysuit: \"#B01020\"}", "palette: {bodysuit: \"#B01020\"}\n    endpoint: fal-ai/flux-2/lora/edit"))
    spec = load_spec(tmp_path / "knight.yaml")
    with pytest.raises(InvalidInput, match="no price is known for fal-ai/flux-2/lora/edit"):
        edit.variant_images(spec, "team_red", ["idle"], tmp_path, tmp_path / "out", lambda r: generate_all(r, settings(tmp_path)))
    assert not (tmp_path / ".fal-assets").exists()  # no journal row, nothing sent


def test_a_missing_base_image_fails_that_pose_only(character, tmp_path):
    spec, root, base = character
    (tmp_path / "poses_raw").mkdir()
    (tmp_path / "poses_raw" / "idle.png").write_bytes((base / "poses_raw" / "idle.png").read_bytes())
    _, made = make_variant(spec, root, tmp_path, "cyan", ["idle", "jump"])
    assert not isinstance(made["idle"], BaseException)
    assert "no base pose image" in str(made["jump"])


def test_conform_inverts_a_fit_and_centre():
    image = Image.new("RGB", (880, 1168), "white")
    image.paste((255, 0, 0), (2, 0, 878, 1168))  # what fitting a 3:4 frame into 880x1168 covers
    back = edit.conform(image, (768, 1024))
    assert back.size == (768, 1024)
    assert np.asarray(back)[:, :, 1].max() < 40  # no white margin came back


# --------------------------------------------------------------------------- sheets


def phaser_frames(folder: Path) -> dict[str, tuple[Image.Image, dict]]:
    """Each frame as Phaser 3 / PixiJS draw it from sheet.png + sheet.json (TexturePacker
    JSON hash): the frame rect, put back at spriteSourceSize inside sourceSize; and its pivot."""
    data = json.loads((folder / "sheet.json").read_text())
    assert data["meta"]["image"] == "sheet.png"
    with Image.open(folder / "sheet.png") as sheet:
        sheet = sheet.convert("RGBA")
        assert (sheet.width, sheet.height) == (data["meta"]["size"]["w"], data["meta"]["size"]["h"])
        out = {}
        for name, frame in data["frames"].items():
            f, s, full = frame["frame"], frame["spriteSourceSize"], frame["sourceSize"]
            assert frame["rotated"] is False
            canvas = Image.new("RGBA", (full["w"], full["h"]), (0, 0, 0, 0))
            canvas.paste(sheet.crop((f["x"], f["y"], f["x"] + f["w"], f["y"] + f["h"])), (s["x"], s["y"]))
            out[name] = (canvas, frame["pivot"])
    return out


def godot_regions(folder: Path) -> dict[str, str]:
    """Animation name -> the atlas region Godot 4 reads from sheet.tres."""
    text = (folder / "sheet.tres").read_text()
    assert text.startswith('[gd_resource type="SpriteFrames"') and 'path="res://sheet.png"' in text
    subs = dict(re.findall(r'\[sub_resource type="AtlasTexture" id="([^"]+)"\]\natlas = ExtResource\("1_sheet"\)\nregion = Rect2\(([^)]*)\)', text))
    names = re.findall(r'"name": &"([^"]+)"', text)
    used = re.findall(r'"texture": SubResource\("([^"]+)"\)', text)
    return {name: subs[sub] for name, sub in zip(names, used)}


def test_the_variant_sheet_loads_like_the_base_and_aligns_frame_for_frame(character):
    spec, root, base = character
    out, made = make_variant(spec, root, base, "cyan")
    for pose, image in made.items():
        pipeline.sprite(image.path, out / "cutouts" / f"{pose}.png", make_cutter("key"))
    sheet = edit.build_variant_sheet(spec, "cyan", out / "cutouts", base, out)
    # the base's layout, under variants/<name>/
    for path in ("sprite_layers/poses/idle.png", "sprite_layers/poses/poses.json", "sheet.png", "sheet.json", "sheet.tres", "contact_sheet.png"):
        assert (out / path).is_file(), path
    assert sheet.warnings == ()
    base_manifest = json.loads((base / "sprite_layers" / "poses" / "poses.json").read_text())
    manifest = json.loads((out / "sprite_layers" / "poses" / "poses.json").read_text())
    assert manifest["canvas"] == base_manifest["canvas"] and manifest["baseline"] == base_manifest["baseline"]
    assert manifest["palette"]["circuit_lines"] == "#00CED1"

    base_frames, frames = phaser_frames(base), phaser_frames(out)
    assert set(frames) == set(base_frames) == set(spec.poses)
    assert set(godot_regions(out)) == set(godot_regions(base)) == set(spec.poses)
    for pose in spec.poses:
        (mine, pivot), (theirs, base_pivot) = frames[pose], base_frames[pose]
        assert mine.size == theirs.size == tuple(base_manifest["canvas"])  # same canvas
        assert pivot == base_pivot  # same pivot: feet on the same spot
        with Image.open(out / "sprite_layers" / "poses" / f"{pose}.png") as layer:
            assert np.array_equal(np.asarray(layer.convert("RGBA")), np.asarray(mine))  # the atlas holds the layer
        a, b = np.asarray(mine)[..., 3] > 127, np.asarray(theirs)[..., 3] > 127
        assert (a & b).sum() / (a | b).sum() > 0.97, pose  # the same silhouette, pixel for pixel
        assert not np.array_equal(np.asarray(mine)[..., :3][a], np.asarray(theirs)[..., :3][a])  # in other colours


def test_a_variant_of_some_poses_gets_a_sheet_of_those(character):
    spec, root, base = character
    out, made = make_variant(spec, root, base, "team_red")
    for pose, image in made.items():
        pipeline.sprite(image.path, out / "cutouts" / f"{pose}.png", make_cutter("key"))
    edit.build_variant_sheet(spec, "team_red", out / "cutouts", base, out)
    assert set(json.loads((out / "sheet.json").read_text())["frames"]) == {"idle", "jump"}


def test_a_variant_sheet_needs_the_base_sheet(character, tmp_path):
    spec, root, base = character
    with pytest.raises(InvalidInput, match="materialize sprite_sheet first"):
        (tmp_path / "cutouts").mkdir()
        for pose in spec.poses:
            (tmp_path / "cutouts" / f"{pose}.png").write_bytes((base / "cutouts" / f"{pose}.png").read_bytes())
        edit.build_variant_sheet(spec, "cyan", tmp_path / "cutouts", tmp_path / "nobase", tmp_path / "out")
