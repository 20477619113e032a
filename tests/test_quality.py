"""The pure rules behind the asset checks: each must fail on the thing it guards against."""

import numpy as np
from PIL import Image, ImageDraw
from safetensors.numpy import save

from fal_assets.quality import image_problems, lora_problems, palette_misses, sprite_problems


def sprite(path, *, box=(30, 20, 70, 90), colour=(255, 20, 147, 255), size=(100, 100)):
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle(box, fill=colour)
    image.save(path)
    return path


def test_sprite_with_real_transparency_passes(tmp_path):
    assert sprite_problems(sprite(tmp_path / "ok.png")) == []


def test_sprite_cut_at_the_border_fails(tmp_path):
    problems = sprite_problems(sprite(tmp_path / "cut.png", box=(30, 20, 70, 99)))
    assert problems and "touches the image border" in problems[0]


def test_sprite_without_transparency_fails(tmp_path):
    full = sprite(tmp_path / "full.png", box=(0, 0, 99, 99))
    assert any("opaque" in p for p in sprite_problems(full))
    Image.new("RGB", (10, 10), "white").save(tmp_path / "rgb.png")
    assert sprite_problems(tmp_path / "rgb.png") == ["rgb.png: no alpha channel"]


def test_blank_and_wrong_size_images_fail(tmp_path):
    Image.new("RGB", (64, 48), "white").save(tmp_path / "blank.png")
    problems = image_problems(tmp_path / "blank.png", (64, 64))
    assert any("64x48, asked for 64x64" in p for p in problems) and any("blank" in p for p in problems)
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    noisy.save(tmp_path / "noisy.png")
    assert image_problems(tmp_path / "noisy.png", (64, 64)) == []


def test_quarantined_files_are_never_used(tmp_path):
    folder = tmp_path / "store" / "quarantine"
    folder.mkdir(parents=True)
    Image.new("RGB", (8, 8), "black").save(folder / "x.png")
    assert "quarantined" in image_problems(folder / "x.png", None)[0]


def test_palette_adherence_names_the_missing_part(tmp_path):
    path = sprite(tmp_path / "pink.png")
    misses = palette_misses(path, {"armor_lines": "#FF1493", "visor": "#00FFFF"})
    assert list(misses) == ["visor"] and misses["visor"] > 60


def test_lora_file_present_parses_and_matches_its_hash(tmp_path):
    import hashlib

    weights = tmp_path / "w.safetensors"
    weights.write_bytes(save({"palette": np.zeros((3, 3), dtype=np.float32)}))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert lora_problems(weights, digest) == []
    assert "sha256 differs" in lora_problems(weights, "0" * 64)[0]
    assert "missing" in lora_problems(tmp_path / "gone.safetensors")[0]
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    assert "not a safetensors file" in lora_problems(tmp_path / "junk.safetensors")[0]
