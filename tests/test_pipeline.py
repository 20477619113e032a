"""The pipeline's stages and the requests they send, without Dagster."""

from pathlib import Path

import pytest
from PIL import Image

from fal_assets import pipeline
from fal_assets.errors import FalAssetsError, GenerationFailed
from fal_assets.recipes import pose_request, reference_request, training_request
from fal_assets.spec import load_spec
from fal_assets.validation import validate

from samples import own_references

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def glitch():
    return load_spec(ROOT / "characters" / "glitch.yaml")


def never(requests):
    raise AssertionError("nothing should be generated")


def test_user_references_are_used_and_nothing_is_paid(tmp_path):
    refs = tmp_path / "refs"
    own_references(refs)
    (refs / "notes.txt").write_text("not an image")
    spec_file = tmp_path / "me.yaml"
    spec_file.write_text(
        "name: me\ntrigger_word: me_char\ndescription: a knight\nstyle: flat\nposes: {idle: standing}\nreferences_dir: refs\n"
    )
    made = pipeline.reference_images(load_spec(spec_file), tmp_path / "out", never)
    assert sorted(made.images) == [f"ref_{i:02d}" for i in range(9)] and made.cost_usd == 0
    assert (tmp_path / "out" / "ref_01.png").read_bytes() == (refs / "ref_01.png").read_bytes()


def test_empty_reference_folder_is_a_clear_error(tmp_path):
    (tmp_path / "refs").mkdir()
    spec_file = tmp_path / "me.yaml"
    spec_file.write_text("name: me\ntrigger_word: me_char\ndescription: a knight\nstyle: flat\nposes: {idle: standing}\nreferences_dir: refs\n")
    with pytest.raises(FalAssetsError, match="holds no images"):
        pipeline.reference_images(load_spec(spec_file), tmp_path / "out", never)


def test_failures_are_all_named(glitch, tmp_path):
    def failing(requests):
        return [GenerationFailed(f"boom {i}") for i, _ in enumerate(requests)]

    with pytest.raises(GenerationFailed) as caught:
        pipeline.reference_images(glitch, tmp_path, failing)
    assert str(caught.value).count("boom") == len(glitch.views)


def test_requests_validate_before_anything_is_sent(glitch, tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"w")
    reference = reference_request(glitch, "front")
    assert validate(reference.endpoint, reference.arguments)["image_size"] == "square_hd"  # >= 1024 px for the trainer
    training = training_request(glitch, tmp_path / "dataset.zip")
    assert training.files == {"image_data_url": tmp_path / "dataset.zip"}
    pose = pose_request(glitch, "run", weights, "draft")
    assert pose.arguments["prompt"].startswith("glitch_char, ")  # trigger word first with a LoRA
    assert pose.arguments["seed"] == glitch.seed_for("run") and pose.arguments["num_inference_steps"] == 12
    assert pose.files == {"loras.0.path": weights}
    arguments = dict(pose.arguments, loras=[{"path": "https://x/w.safetensors", "scale": 1.0}])
    validate(pose.endpoint, arguments)
    assert pose.labels == {"character": "glitch", "pose": "run", "asset": "pose_images", "profile": "draft"}


def test_a_stale_reference_never_reaches_the_dataset(tmp_path):
    refs = tmp_path / "refs"
    own_references(refs, count=9)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old_view.png").write_bytes(b"left from an earlier spec")
    spec_file = tmp_path / "me.yaml"
    spec_file.write_text("name: me\ntrigger_word: me_char\ndescription: a knight\nstyle: flat\nposes: {idle: standing}\nreferences_dir: refs\n")
    pipeline.reference_images(load_spec(spec_file), out, never)
    assert sorted(p.name for p in out.iterdir()) == [f"ref_{i:02d}.png" for i in range(9)]


def test_an_unchanged_pose_image_is_not_cut_again(tmp_path):
    from fal_assets.cutout import make_cutter

    source = tmp_path / "idle.png"
    image = Image.new("RGB", (64, 96), "white")
    image.paste((200, 40, 40), (20, 20, 44, 80))
    image.save(source)
    out = tmp_path / "cutouts" / "idle.png"
    cutter = make_cutter("key")
    first = pipeline.sprite(source, out, cutter)
    made = out.stat().st_mtime_ns
    again = pipeline.sprite(source, out, cutter)
    assert (first.details["cache_hit"], again.details["cache_hit"]) == (False, True)
    assert out.stat().st_mtime_ns == made and again.method == first.method
    assert pipeline.sprite(source, out, make_cutter("key", key_options={"tolerance": 20})).details["cache_hit"] is False  # other settings
    image.paste((40, 40, 200), (20, 20, 30, 30))
    image.save(source)
    assert pipeline.sprite(source, out, make_cutter("key", key_options={"tolerance": 20})).details["cache_hit"] is False  # a new image
