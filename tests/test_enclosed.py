"""Enclosed background: gaps a figure encloses are keyed, its white parts stay."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from fal_assets import pipeline
from fal_assets.cutout import KeyCutter
from fal_assets.generate import Settings, generate_all
from fal_assets.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
S = 4  # drawn at 4x and reduced: anti-aliased edges like a render's
OUTLINE = (30, 26, 40)
SKIN = (240, 200, 160)
WHITE = (255, 255, 255)
JEANS = (50, 60, 120)


def figure(background=WHITE, *, outline=True, shaded_shirt=True, shirt=WHITE) -> Image.Image:
    """An outlined figure in a white shirt with a hand on the hip (a gap between arm
    and body), crossed legs (a gap between them) and eyes with white scleras and
    white highlights in the irises."""
    im = Image.new("RGB", (320 * S, 400 * S), background)
    d = ImageDraw.Draw(im)
    ow = 5 if outline else 0

    def pts(*points):
        return [(x * S, y * S) for x, y in points]

    def limb(points, width, fill):
        for w, colour in ((width + 2 * ow, OUTLINE), (width, fill)):
            d.line(pts(*points), fill=colour, width=w * S, joint="curve")
            for x, y in points:
                d.ellipse(pts((x - w / 2, y - w / 2), (x + w / 2, y + w / 2)), fill=colour)

    limb([(125, 275), (185, 380)], 18, JEANS)
    limb([(195, 275), (135, 380)], 18, JEANS)
    d.rectangle(pts((110, 140), (210, 285)), fill=shirt, outline=OUTLINE if outline else shirt, width=max(ow, 1) * S)
    if shaded_shirt:
        d.rectangle(pts((178, 145), (205, 280)), fill=(200, 200, 212))
    limb([(118, 155), (60, 205), (118, 255)], 16, SKIN)  # hand on the hip
    limb([(205, 155), (240, 265)], 16, SKIN)
    d.ellipse(pts((120, 40), (200, 132)), fill=SKIN, outline=OUTLINE if outline else SKIN, width=max(ow, 1) * S)
    for x in (145, 175):
        d.ellipse(pts((x - 12, 68), (x + 12, 102)), fill=WHITE, outline=OUTLINE, width=3 * S)
        d.ellipse(pts((x - 8, 76), (x + 8, 98)), fill=(40, 90, 200))
        d.ellipse(pts((x - 5, 79), (x, 85)), fill=WHITE)
    return im.reduce(S)


ARM_GAP = (205, 95)  # (row, column) inside the gap between the arm and the body
LEG_GAP = (292, 160)  # between the crossed legs, under the shirt
SHIRT = (212, 140)
SCLERA = (72, 145)
HIGHLIGHT = (82, 142)


def region(image: Image.Image, point, background) -> np.ndarray:
    """The pixels of the flat region around ``point`` (within 12 of the background),
    eroded by 2 px so its anti-aliased rim does not count."""
    rgb = np.asarray(image, dtype=np.float32)
    near = np.linalg.norm(rgb - np.asarray(background, dtype=np.float32), axis=2) <= 12
    labels, _ = ndimage.label(near)
    found = labels == labels[point]
    return ndimage.binary_erosion(found, iterations=2) if found.sum() > 40 else found


def alpha_of(result) -> np.ndarray:
    return np.asarray(result.image)[..., 3]


@pytest.mark.parametrize("background", [WHITE, (90, 200, 120)], ids=["white-bg", "green-bg"])
def test_gaps_between_limbs_are_keyed_and_white_parts_stay(background):
    image = figure(background)
    result = KeyCutter().cut(image)
    alpha = alpha_of(result)
    for gap in (ARM_GAP, LEG_GAP):
        assert (alpha[region(image, gap, background)] == 0).all(), gap
    if background == WHITE:
        for white in (SHIRT, SCLERA, HIGHLIGHT):
            assert (alpha[region(image, white, WHITE)] == 255).all(), white
    assert result.details["enclosed_keyed"] == 2
    assert result.details["outline_colour"] == pytest.approx(list(OUTLINE), abs=3)
    # the gaps' rims are soft and un-mixed like the silhouette's: no white fringe left
    rgba = np.asarray(result.image).astype(np.float32)
    rim = ndimage.binary_dilation(region(image, ARM_GAP, background), iterations=3) & (alpha > 0) & (alpha < 255)
    assert rim.any()
    assert (np.linalg.norm(rgba[rim][:, :3] - np.asarray(background), axis=1) > 60).mean() > 0.9


def test_a_flat_white_shirt_outlined_all_round_stays():
    image = figure(shaded_shirt=False)
    alpha = alpha_of(KeyCutter().cut(image))
    assert (alpha[region(image, SHIRT, WHITE)] == 255).all()
    assert (alpha[region(image, ARM_GAP, WHITE)] == 0).all()


def test_without_an_outline_nothing_enclosed_is_keyed():
    # nothing tells a hole from a white part in a figure without an outline: it stays
    image = figure(outline=False, shaded_shirt=False, shirt=(200, 60, 60))
    result = KeyCutter().cut(image)
    assert result.details["enclosed_keyed"] == 0 and "outline_colour" not in result.details
    for white in (ARM_GAP, SCLERA, HIGHLIGHT):
        assert (alpha_of(result)[region(image, white, WHITE)] == 255).all(), white


def test_enclosed_keying_can_be_turned_off():
    image = figure()
    cutter = KeyCutter(enclosed=False)
    assert cutter.describe()["enclosed"] is False
    alpha = alpha_of(cutter.cut(image))
    assert (alpha[region(image, ARM_GAP, WHITE)] == 255).all()


def enclosed_background(result, least: int = 30) -> list[int]:
    """Sizes of opaque regions of the background colour that the cutout kept."""
    rgba = np.asarray(result.image)
    rgb = rgba[..., :3].astype(np.float32)
    key = np.asarray(result.details["background_colour"], dtype=np.float32)
    labels, count = ndimage.label((np.linalg.norm(rgb - key, axis=2) <= 12) & (rgba[..., 3] > 127))
    sizes = ndimage.sum_labels(np.ones(labels.shape), labels, np.arange(1, count + 1)) if count else []
    return [int(s) for s in sizes if s >= least]


def test_no_demo_sprite_keeps_enclosed_background(tmp_path):
    # glitch: the gaps between arm and body, between the legs, beside the ponytail
    spec = load_spec(ROOT / "characters" / "glitch.yaml")
    generate = functools.partial(generate_all, settings=Settings(store_root=tmp_path / "store"))
    refs = pipeline.reference_images(spec, tmp_path / "refs", generate)
    pipeline.training_dataset(spec, refs.images, tmp_path / "dataset.zip")
    lora = pipeline.character_lora(spec, tmp_path / "dataset.zip", tmp_path / "lora", generate)
    poses = pipeline.pose_images(spec, ["idle", "crouch", "sit", "victory"], lora.weights, tmp_path / "poses", generate)
    for pose, made in poses.items():
        with Image.open(made.path) as image:
            rgb = image.convert("RGB")
        assert enclosed_background(KeyCutter(enclosed=False).cut(rgb)), pose  # the case this covers
        assert enclosed_background(KeyCutter().cut(rgb)) == [], pose
