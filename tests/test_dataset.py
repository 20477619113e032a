"""The trainer's dataset zip: 9-50 images >= 1024 px, captions with the trigger word,
near-duplicates dropped by perceptual hash, one clear line per problem."""

import zipfile

import pytest
from PIL import Image, ImageDraw

from fal_assets.dataset import DatasetImage, build_dataset, near_duplicates, read_dataset
from fal_assets.errors import InvalidInput
from fal_assets.quality import dataset_problems


def picture(path, index, size=1024, shift=0):
    """A distinct picture per index (different shapes and places), or a near copy with ``shift``."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for k in range(4):
        x = (index * 97 + k * 211) % (size - 300) + shift
        y = (index * 151 + k * 137) % (size - 300)
        colour = ((index * 40 + k * 60) % 256, (index * 90) % 256, (k * 70) % 256)
        (draw.ellipse if (index + k) % 2 else draw.rectangle)([x, y, x + 150 + 20 * k, y + 250 - 15 * k], fill=colour)
    image.save(path)
    return path


def items(tmp_path, n, caption="bolt_char, a robot", size=1024):
    return [DatasetImage(f"view{i}", picture(tmp_path / f"view{i}.png", i, size), caption) for i in range(n)]


def test_builds_a_zip_with_a_caption_beside_each_image(tmp_path):
    report = build_dataset(items(tmp_path, 10), "bolt_char", tmp_path / "dataset.zip")
    assert report.count == 10 and report.dropped == {}
    names = zipfile.ZipFile(tmp_path / "dataset.zip").namelist()
    assert sorted(names) == sorted([f"view{i}.png" for i in range(10)] + [f"view{i}.txt" for i in range(10)])
    content = read_dataset((tmp_path / "dataset.zip").read_bytes())
    assert all(caption == "bolt_char, a robot" for _, caption in content.values())
    assert dataset_problems(tmp_path / "dataset.zip", "bolt_char") == []


def test_the_same_inputs_give_the_same_zip_bytes(tmp_path):
    images = items(tmp_path, 9)
    build_dataset(images, "bolt_char", tmp_path / "a.zip")
    build_dataset(images, "bolt_char", tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_near_duplicates_are_dropped_then_counted(tmp_path):
    images = items(tmp_path, 9)
    copy = DatasetImage("view0_again", picture(tmp_path / "again.png", 0, shift=2), "bolt_char, again")
    report = build_dataset(images + [copy], "bolt_char", tmp_path / "dataset.zip")
    assert report.dropped == {"view0_again": "near-duplicate of view0"} and report.count == 9


def test_too_few_distinct_images_is_one_clear_line(tmp_path):
    images = items(tmp_path, 8)
    with pytest.raises(InvalidInput) as caught:
        build_dataset(images, "bolt_char", tmp_path / "dataset.zip", where="bolt training_dataset")
    assert caught.value.lines() == ["bolt training_dataset: images: 8 distinct images (0 near-duplicates dropped); fal's trainer wants 9 to 50"]
    assert not (tmp_path / "dataset.zip").exists()  # nothing half-written


def test_small_images_and_missing_trigger_words_are_named(tmp_path):
    images = items(tmp_path, 9)
    images[3] = DatasetImage("tiny", picture(tmp_path / "tiny.png", 3, size=512), "bolt_char")
    images[5] = DatasetImage("uncaptioned", images[5].path, "a robot")
    with pytest.raises(InvalidInput) as caught:
        build_dataset(images, "bolt_char", tmp_path / "dataset.zip", where="ds")
    lines = caught.value.lines()
    assert "ds: images.tiny: is 512x512; fal's trainer wants at least 1024 px on each side" in lines
    assert "ds: captions.uncaptioned: caption lacks the trigger word 'bolt_char'" in lines


def test_a_broken_image_is_named(tmp_path):
    images = items(tmp_path, 9)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    images[0] = DatasetImage("broken", broken, "bolt_char")
    with pytest.raises(InvalidInput) as caught:
        build_dataset(images, "bolt_char", tmp_path / "dataset.zip", where="ds")
    assert caught.value.lines()[0].startswith("ds: images.broken: does not decode as an image")


def test_near_duplicates_rule_is_pure():
    class Hash(int):
        def __sub__(self, other):
            return abs(int(self) - int(other))

    found = near_duplicates({"a": Hash(0), "b": Hash(3), "c": Hash(40), "d": Hash(44)}, distance=6)
    assert found == {"b": "a", "d": "c"}
