"""Cutouts: rembg with a tiny custom ONNX model (against the rembg CLI), and keying."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fal_assets.cutout import (
    CutoutResult,
    KeyCutter,
    RembgCutter,
    make_cutter,
    model_file,
    numba_cache_dir,
    rembg_homes,
    rembg_session,
)
from fal_assets.errors import InvalidInput

from onnx_model import run_rembg_cli, write_model

SUPERSAMPLE = 4


@pytest.fixture(scope="module", autouse=True)
def kept_numba_cache():
    """A kept Numba cache, so only the first ``import rembg`` on a machine compiles."""
    before = os.environ.get("NUMBA_CACHE_DIR")
    folder = numba_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("NUMBA_CACHE_DIR", None)


@pytest.fixture()
def u2net_home(tmp_path, monkeypatch):
    home = tmp_path / "u2net"
    home.mkdir()
    monkeypatch.setenv("U2NET_HOME", str(home))
    return home


# ------------------------------------------------------------------ test images


def coverage(size, draw) -> np.ndarray:
    """Exact-ish pixel coverage (0..1) of shapes drawn at 4x and box-filtered down."""
    big = Image.new("L", (size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE), 0)
    draw(ImageDraw.Draw(big), SUPERSAMPLE)
    return np.asarray(big.reduce(SUPERSAMPLE), dtype=np.float32) / 255.0


def _body(d, s):
    d.ellipse([60 * s, 40 * s, 200 * s, 230 * s], fill=255)
    d.polygon([(30 * s, 200 * s), (120 * s, 120 * s), (60 * s, 240 * s)], fill=255)
    d.line([(130 * s, 45 * s), (170 * s, 8 * s)], fill=255, width=3 * s)  # a thin antenna


def _eye(d, s):
    d.ellipse([100 * s, 80 * s, 150 * s, 130 * s], fill=255)  # white, fully inside the body


SIZE = (256, 256)
BODY = coverage(SIZE, _body)
EYE = coverage(SIZE, _eye)


def scene(background, subject, *, noise: float = 0.0, seed: int = 0) -> Image.Image:
    """Anti-aliased subject with a white eye on a flat background (optionally noisy)."""
    bg = np.asarray(background, dtype=np.float32)
    fg = np.asarray(subject, dtype=np.float32)
    img = BODY[..., None] * fg + (1 - BODY[..., None]) * bg
    img = EYE[..., None] * 255.0 + (1 - EYE[..., None]) * img
    if noise:
        img = img + np.random.default_rng(seed).normal(0.0, noise, img.shape)
    return Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8))


def toward_background(colours: np.ndarray, subject, background) -> np.ndarray:
    """How far each colour lies from the subject colour toward the background (0 = none, 1 = all)."""
    fg = np.asarray(subject, dtype=np.float64)
    direction = np.asarray(background, dtype=np.float64) - fg
    return (colours.astype(np.float64) - fg) @ direction / (direction @ direction)


# --------------------------------------------------------------------------- key

CASES = [
    pytest.param((255, 255, 255), (40, 60, 160), 0.0, id="white-bg"),
    pytest.param((90, 200, 120), (150, 40, 60), 0.0, id="green-bg"),
    pytest.param((255, 255, 255), (200, 170, 140), 2.0, id="white-bg-light-subject-noisy"),
    pytest.param((90, 200, 120), (150, 40, 60), 2.0, id="green-bg-noisy"),
]


@pytest.mark.parametrize("background, subject, noise", CASES)
def test_key_cutout_matches_known_mask(background, subject, noise):
    image = scene(background, subject, noise=noise)
    result = KeyCutter().cut(image)
    assert isinstance(result, CutoutResult) and result.method == "key"
    assert result.image.mode == "RGBA" and result.image.size == image.size
    rgba = np.asarray(result.image)
    alpha = rgba[..., 3] / 255.0

    known = BODY >= 0.5
    got = alpha > 0.5
    iou = (known & got).sum() / (known | got).sum()
    assert iou >= 0.98, iou
    # the white eye is enclosed by the subject: it stays opaque
    assert (rgba[..., 3][EYE > 0.99] == 255).all()
    # far from the subject the background is fully transparent
    assert (rgba[..., 3][BODY == 0] == 0).mean() > 0.99
    # soft edges follow the true coverage
    edge = (BODY > 0.05) & (BODY < 0.95) & (EYE == 0)
    assert np.abs(alpha[edge] - BODY[edge]).mean() < 0.08

    # no fringe: edge colours are the subject's, not blended toward the background
    seen = edge & (alpha > 0.05)
    after = toward_background(rgba[..., :3][seen], subject, background)
    before = toward_background(np.asarray(image)[seen], subject, background)
    assert np.median(before) > 0.3  # the input edges do carry the background
    assert abs(np.median(after)) < 0.05, np.median(after)
    assert np.percentile(np.abs(after), 90) < (0.05 if noise == 0 else 0.25)
    assert result.details["background_colour"] == pytest.approx(list(background), abs=2)
    assert "warning" not in result.details


def test_key_keeps_the_given_alpha_and_reports_a_busy_border():
    ramp = np.linspace(0, 255, 128, dtype=np.float32)
    gradient = np.dstack([np.tile(ramp, (128, 1))] * 3).astype(np.uint8)
    result = KeyCutter().cut(Image.fromarray(gradient))
    assert "not flat" in result.details["warning"]

    rgba = np.asarray(scene((255, 255, 255), (40, 60, 160)).convert("RGBA")).copy()
    rgba[:, :128, 3] = 0  # the left half was already transparent
    out = np.asarray(KeyCutter().cut(Image.fromarray(rgba)).image)
    assert (out[:, :128, 3] == 0).all()
    assert (out[:, 128:, 3][BODY[:, 128:] > 0.99] == 255).all()


def test_key_settings_are_checked():
    with pytest.raises(InvalidInput) as err:
        KeyCutter(tolerance=60, softness=40, edge_width=0)
    lines = err.value.lines()
    assert any("tolerance" in line for line in lines) and any("edge_width" in line for line in lines)


# ------------------------------------------------------------------------- rembg


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_rembg_custom_model_matches_the_rembg_cli(u2net_home, tmp_path):
    model = write_model(u2net_home / "tiny.onnx")
    src, cli_out = tmp_path / "in.png", tmp_path / "cli.png"
    scene((255, 255, 255), (40, 60, 160)).resize((300, 220)).save(src)

    cutter = RembgCutter(model_path=str(model))
    assert cutter.model == "u2net_custom"
    with Image.open(src) as image:
        result = cutter.cut(image)
    assert result.method == "rembg" and result.details["model_path"] == str(model)
    assert result.details["model"] == "u2net_custom"

    env = {**os.environ, "U2NET_HOME": str(u2net_home)}
    extras = json.dumps({"model_path": str(model)})
    run_rembg_cli(["i", "-m", "u2net_custom", "-x", extras, str(src), str(cli_out)], env=env)
    with Image.open(cli_out) as cli:
        expected = np.asarray(cli.convert("RGBA"))
    got = np.asarray(result.image)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected), f"{(got != expected).any(axis=2).sum()} pixels differ"

    # the tiny model gives a sensible mask: the subject kept, the background gone
    mask = np.asarray(Image.fromarray((BODY * 255).astype(np.uint8)).resize((300, 220))) > 127
    opaque = got[..., 3] > 127
    assert (mask & opaque).sum() / (mask | opaque).sum() > 0.9

    # one session per process and model, reused by every cut
    assert cutter.session() is RembgCutter(model_path=str(model)).session()
    assert cutter.session() is rembg_session("u2net_custom", str(model))


def test_rembg_homes_agree_with_rembg(tmp_path, monkeypatch):
    from rembg.sessions import sessions

    u2net = sessions["u2net"]
    for env in (
        {"U2NET_HOME": str(tmp_path / "u2")},
        {"REMBG_HOME": str(tmp_path / "rb")},
        {"XDG_DATA_HOME": str(tmp_path / "xdg")},
        {},
    ):
        for name in ("U2NET_HOME", "REMBG_HOME", "XDG_DATA_HOME"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        home, legacy = rembg_homes()
        assert (str(home), str(legacy)) == (u2net.rembg_home(), u2net.legacy_home()), env

    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2"))
    assert model_file("u2net") is None and u2net.resolve_existing("u2net.onnx") is None
    (tmp_path / "u2").mkdir()
    (tmp_path / "u2" / "u2net.onnx").write_bytes(b"not a real model")
    assert str(model_file("u2net")) == u2net.resolve_existing("u2net.onnx")


def test_model_path_must_lie_under_the_model_folder(u2net_home, tmp_path):
    outside = write_model(tmp_path / "elsewhere" / "tiny.onnx")
    with pytest.raises(InvalidInput, match="model_path: .* must lie under"):
        RembgCutter(model_path=str(outside))
    with pytest.raises(InvalidInput, match="does not exist"):
        RembgCutter(model_path=str(u2net_home / "missing.onnx"))
    with pytest.raises(InvalidInput, match="takes no model_path"):
        RembgCutter("isnet-anime", model_path=str(write_model(u2net_home / "tiny.onnx")))
    with pytest.raises(InvalidInput, match="needs a model_path"):
        RembgCutter("u2net_custom")


def test_auto_picks_rembg_only_when_the_model_is_here(u2net_home):
    cutter = make_cutter("auto", model="u2net")
    assert isinstance(cutter, KeyCutter)
    assert "no u2net.onnx" in cutter.reason
    result = cutter.cut(scene((255, 255, 255), (40, 60, 160)))
    assert result.method == "key" and result.details["reason"] == cutter.reason

    (u2net_home / "u2net.onnx").write_bytes(b"placeholder")  # never loaded here
    cutter = make_cutter("auto", model="u2net", rembg_options={"alpha_matting": True})
    assert isinstance(cutter, RembgCutter) and cutter.model == "u2net" and cutter.alpha_matting
    assert "found" in cutter.reason

    custom = write_model(u2net_home / "tiny.onnx")
    cutter = make_cutter("auto", model_path=custom)
    assert isinstance(cutter, RembgCutter) and cutter.model == "u2net_custom"

    assert isinstance(make_cutter("key", key_options={"tolerance": 5}), KeyCutter)
    assert isinstance(make_cutter("rembg", model="isnet-anime"), RembgCutter)
    with pytest.raises(InvalidInput, match="cutout: method: 'magic' is not a cutout method"):
        make_cutter("magic")


# ------------------------------------------------------- rembg's slow first import

KEYING_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
from PIL import Image
from fal_assets import pipeline
from fal_assets.cutout import make_cutter
src = Path(sys.argv[1]) / "pose.png"
Image.new("RGB", (64, 64), "white").save(src)
made = pipeline.sprite(src, Path(sys.argv[1]) / "cut" / "pose.png", make_cutter("key"))
print(made.method, "rembg" in sys.modules, "numba" in sys.modules)
"""


def test_keying_never_imports_rembg_or_numba(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", KEYING_IN_A_FRESH_PROCESS, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["key", "False", "False"]
    assert "rembg" not in done.stderr


def test_a_cold_numba_cache_is_announced_and_a_warm_one_is_silent(tmp_path, kept_numba_cache):
    import subprocess
    import sys

    from fal_assets.cutout import numba_cache_is_cold

    script = "from fal_assets.cutout import import_rembg; import_rembg()"
    cwd = os.path.dirname(os.path.dirname(__file__))
    cold = tmp_path / "numba"
    # NUMBA_DISABLE_JIT keeps the cold import quick (nothing compiles, the cache stays empty)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(cold), "NUMBA_DISABLE_JIT": "1"})
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("cutout: ")]
    assert lines[0] == f"cutout: first rembg import on this machine: compiling Numba code into {cold} (about a minute, once)"
    assert lines[1].startswith("cutout: rembg imported in ") and lines[1].endswith(f"later runs reuse {cold}")
    assert numba_cache_is_cold(cold) and numba_cache_is_cold(tmp_path / "missing")
    for _ in range(2):  # the first may still compile (a fresh machine); the second finds the cache
        warm = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=cwd,
                              env={**os.environ, "NUMBA_CACHE_DIR": str(kept_numba_cache)})
        assert warm.returncode == 0, warm.stderr
    assert "cutout: " not in warm.stderr and not numba_cache_is_cold(kept_numba_cache)
