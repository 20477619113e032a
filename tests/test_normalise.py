"""Normalising a character's poses: one canvas, one height, one baseline, no clipping."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fal_assets.errors import InvalidInput
from fal_assets.normalise import content_box, normalise_poses, resize_rgba, write_poses

BLUE = (40, 60, 160, 255)


def figure(height: float, *, canvas=(420, 520), at=(60, 30), width: float | None = None, colour=BLUE, crouch=False) -> Image.Image:
    """A character ``height`` px tall with two feet: one flat colour, anti-aliased edges."""
    s = 4
    w = width or height * 0.4
    mask = Image.new("L", (canvas[0] * s, canvas[1] * s), 0)
    d = ImageDraw.Draw(mask)
    x, y = at[0] * s, at[1] * s
    w, h = w * s, height * s
    head = 0.3 if crouch else 0.22
    d.ellipse([x + w * 0.3, y, x + w * 0.7, y + h * head], fill=255)
    d.rectangle([x, y + h * head, x + w, y + h * 0.7], fill=255)
    d.rectangle([x + w * 0.1, y + h * 0.7, x + w * 0.4, y + h], fill=255)
    d.rectangle([x + w * 0.6, y + h * 0.7, x + w * 0.9, y + h], fill=255)
    image = Image.new("RGBA", canvas, colour)
    image.putalpha(mask.reduce(s))
    return image


def rows_cols(image: Image.Image, threshold: int = 8):
    alpha = np.asarray(image)[..., 3] > threshold
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    return rows, cols


@pytest.fixture(scope="module")
def poses():
    # the generator framed each pose differently: sizes and positions vary
    cutouts = {
        "idle": figure(400, at=(60, 30)),
        "walk": figure(360, at=(150, 120), width=170),
        "wave": figure(330, canvas=(360, 400), at=(100, 40)),
        "crouch": figure(230, at=(20, 250), width=200, crouch=True),
        "jump": figure(370, at=(110, 10)),
        "fall": figure(380, at=(30, 100)),
    }
    stances = {"crouch": "crouch", "jump": "airborne", "fall": "airborne"}
    return cutouts, normalise_poses(cutouts, stances=stances, lifts={"jump": 0.25}, padding=8)


def test_one_canvas_one_baseline_one_height(poses):
    cutouts, result = poses
    assert {p.image.size for p in result.poses.values()} == {result.canvas}
    assert result.baseline == result.canvas[1] - 8
    # the standing height is the median of the standing cutouts (no target_height)
    trimmed = [content_box(cutouts[n])[3] - content_box(cutouts[n])[1] for n in ("idle", "walk", "wave")]
    assert result.height == sorted(trimmed)[1] and abs(result.height - 360) <= 2

    grounded = ["idle", "walk", "wave", "crouch", "fall"]
    for name in grounded:
        rows, _ = rows_cols(result.poses[name].image)
        assert abs(rows[-1] + 1 - result.baseline) <= 1, name

    heights = {name: np.ptp(rows_cols(result.poses[name].image)[0]) + 1 for name in result.poses}
    standing = [heights[n] for n in ("idle", "walk", "wave")]
    assert max(standing) - min(standing) <= 2
    assert abs(standing[0] - result.height) <= 2
    # crouch is shorter, at the character's scale (not stretched to the standing height)
    assert heights["crouch"] < min(standing) * 0.75
    crouch_box = content_box(cutouts["crouch"])
    assert heights["crouch"] == pytest.approx((crouch_box[3] - crouch_box[1]) * result.scale, abs=2)
    assert result.poses["crouch"].scale == result.scale


def test_nothing_clipped_and_feet_on_the_pivot(poses):
    _, result = poses
    width, height = result.canvas
    pivots = {p.pivot for p in result.poses.values()}
    assert pivots == {(width // 2, result.baseline)}
    for name, pose in result.poses.items():
        alpha = np.asarray(pose.image)[..., 3]
        rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
        assert rows[0] >= 8 and cols[0] >= 8, name
        assert rows[-1] < height - 8 and cols[-1] < width - 8, name
        left, top, right, bottom = pose.box
        assert 8 <= left and right <= width - 8 and 8 <= top and bottom <= height - 8
        # the feet (lowest rows) are centred on the pivot
        feet = np.flatnonzero((alpha[bottom - 6 : bottom] > 8).any(axis=0))
        assert abs((feet[0] + feet[-1] + 1) / 2 - pose.pivot[0]) <= 1, name
    # the widest pose touches the padding on one side at least
    assert min(min(p.box[0] for p in result.poses.values()), min(width - p.box[2] for p in result.poses.values())) == 8


def test_airborne_lift(poses):
    _, result = poses
    jump, fall = result.poses["jump"], result.poses["fall"]
    assert jump.lift == round(0.25 * result.height)
    rows, _ = rows_cols(jump.image)
    assert abs(rows[-1] + 1 - (result.baseline - jump.lift)) <= 1
    assert fall.lift == 0  # no lift known: it sits on the baseline
    assert jump.scale == fall.scale == result.scale


def test_resize_is_alpha_correct():
    white = figure(300, colour=(255, 255, 255, 255))
    small = np.asarray(resize_rgba(white, (105, 130)))
    visible = small[..., 3] > 0
    assert visible.any() and (small[..., 3] < 255).any()
    assert small[..., :3][visible].min() >= 254  # no dark fringe from transparent black
    blue = np.asarray(resize_rgba(figure(300), (105, 130)))
    seen = blue[..., 3] > 16
    assert np.abs(blue[..., :3][seen].astype(int) - BLUE[:3]).max() <= 3


def test_target_height_and_trimmed_boxes(poses):
    cutouts, _ = poses
    result = normalise_poses({"idle": cutouts["idle"], "walk": cutouts["walk"]}, target_height=200, padding=4)
    assert result.height == 200
    for name, pose in result.poses.items():
        rows, _ = rows_cols(pose.image)
        assert abs(rows[-1] - rows[0] + 1 - 200) <= 2
        assert pose.bbox == content_box(cutouts[name])
    assert result.poses["idle"].scale == pytest.approx(200 / 400, abs=0.01)


def test_warnings_for_odd_framing():
    cutouts = {"idle": figure(400), "walk": figure(250), "run": figure(390), "sit": figure(420, crouch=True)}
    result = normalise_poses(cutouts, stances={"sit": "sit"})
    assert any("'walk'" in w and "shorter" in w for w in result.warnings)
    assert any("'sit'" in w and "taller than the standing poses" in w for w in result.warnings)
    only_crouch = normalise_poses({"crouch": figure(200, crouch=True)}, stances={"crouch": "crouch"})
    assert any("no standing pose" in w for w in only_crouch.warnings)


def test_bad_input_is_one_line_per_problem():
    empty = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    with pytest.raises(InvalidInput) as err:
        normalise_poses(
            {"idle": figure(100), "bad/name": figure(100)},
            stances={"idle": "flying", "ghost": "standing"},
            lifts={"idle": 0.2},
            padding=-1,
        )
    text = str(err.value)
    for fragment in ("poses.bad/name", "stances.idle: 'flying' is not a stance", "stances.ghost", "lifts.idle", "padding"):
        assert fragment in text
    with pytest.raises(InvalidInput, match="poses.idle: the cutout is empty"):
        normalise_poses({"idle": empty})


def test_write_poses(poses, tmp_path):
    _, result = poses
    written = write_poses(result, tmp_path / "out")
    assert set(written) == set(result.poses)
    for name, path in written.items():
        assert path == tmp_path / "out" / f"{name}.png"
        with Image.open(path) as image:
            assert image.size == result.canvas
            assert np.array_equal(np.asarray(image.convert("RGBA")), np.asarray(result.poses[name].image))
    manifest = json.loads((tmp_path / "out" / "poses.json").read_text())
    assert manifest["poses"]["jump"]["pivot"] == list(result.poses["jump"].pivot)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_a_jump_keeps_its_lift_above_the_shared_ground():
    from PIL import Image, ImageDraw

    from fal_assets.normalise import estimate_lifts, normalise_poses

    def frame(top, bottom):
        image = Image.new("RGBA", (100, 200), (0, 0, 0, 0))
        ImageDraw.Draw(image).rectangle([40, top, 60, bottom], fill=(200, 0, 0, 255))
        return image

    cutouts = {"idle": frame(80, 179), "wave": frame(80, 179), "jump": frame(40, 139)}  # 40 px off the ground
    stances = {"idle": "standing", "wave": "standing", "jump": "airborne"}
    lifts = estimate_lifts(cutouts, stances)
    assert lifts == {"jump": pytest.approx(0.4, abs=0.01)}
    poses = normalise_poses(cutouts, stances=stances, lifts=lifts).poses
    assert poses["jump"].box[3] < poses["idle"].box[3] - 0.35 * (poses["idle"].box[3] - poses["idle"].box[1])
    assert estimate_lifts({"jump": cutouts["jump"]}, {"jump": "airborne"}) == {}  # no standing pose: no ground
