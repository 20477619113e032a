"""Prompt building: order, trigger word, palette binding, structured JSON, captions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fal_assets.errors import InvalidInput
from fal_assets.prompts import FULL_BODY, caption, palette_phrase, pose_prompt, reference_prompt
from fal_assets.spec import CharacterSpec, load_spec, load_specs

CHARACTERS = Path(__file__).resolve().parent.parent / "characters"

SPEC = textwrap.dedent(
    """\
    name: knight
    trigger_word: knight_char
    description: |
      A small knight in silver armor,
      red plume on the helmet.
    style: flat vector game art
    background: plain light gray background
    palette:
      plume: "#CC2200"
      shield_rim: "#FFD700"
    poses:
      idle: standing with the sword lowered.
      run:
        description: running to the right
        stance: standing
    views:
      front: front view, standing straight
      close_up: close-up of the helmet
    """
)


@pytest.fixture()
def spec(tmp_path) -> CharacterSpec:
    path = tmp_path / "knight.yaml"
    path.write_text(SPEC)
    return load_spec(path)


@pytest.fixture(scope="module")
def characters() -> dict[str, CharacterSpec]:
    return load_specs(CHARACTERS)


def test_order_subject_action_style_context(spec):
    prompt = pose_prompt(spec, "run")
    positions = [
        prompt.index("A small knight in silver armor"),
        prompt.index("plume #CC2200"),
        prompt.index("running to the right"),
        prompt.index("flat vector game art"),
        prompt.index("Plain light gray background"),
    ]
    assert positions == sorted(positions)
    assert prompt.startswith("A small knight")


def test_trigger_word_first_only_with_lora(spec):
    with_lora = pose_prompt(spec, "idle", lora=True)
    assert with_lora.startswith("knight_char, A small knight")
    assert "knight_char" not in pose_prompt(spec, "idle")


def test_full_description_every_call(spec):
    one_line = "A small knight in silver armor, red plume on the helmet."
    for pose in spec.poses:
        assert one_line in pose_prompt(spec, pose)
        assert one_line in pose_prompt(spec, pose, lora=True)
    for view in spec.views:
        assert one_line in reference_prompt(spec, view)


def test_hex_codes_bound_to_their_parts(spec):
    assert palette_phrase(spec) == "plume #CC2200, shield rim #FFD700"
    assert "Colors: plume #CC2200, shield rim #FFD700." in pose_prompt(spec, "idle")


def test_full_body_and_clean_punctuation(spec):
    prompt = pose_prompt(spec, "idle")
    assert f"Pose: standing with the sword lowered, {FULL_BODY}." in prompt
    assert ".." not in prompt and "\n" not in prompt and "  " not in prompt


def test_full_body_not_repeated(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SPEC.replace("running to the right", "running, full body visible head to toe"))
    assert pose_prompt(load_spec(path), "run").lower().count(FULL_BODY) == 1


def test_prompt_is_stable(spec, tmp_path):
    again_path = tmp_path / "again.yaml"
    again_path.write_text(SPEC)
    again = load_spec(again_path)
    for pose in spec.poses:
        assert pose_prompt(spec, pose, lora=True) == pose_prompt(again, pose, lora=True)
        assert pose_prompt(spec, pose, structured=True) == pose_prompt(again, pose, structured=True)


def test_background_changes_only_the_context(spec, tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text(SPEC.replace("plain light gray background", "sunny meadow"))
    other = load_spec(path)
    a, b = pose_prompt(spec, "idle"), pose_prompt(other, "idle")
    assert a.endswith("Plain light gray background.") and b.endswith("Sunny meadow.")
    assert a.removesuffix("Plain light gray background.") == b.removesuffix("Sunny meadow.")


def test_unknown_pose(spec):
    with pytest.raises(InvalidInput, match="unknown pose"):
        pose_prompt(spec, "fly")


def test_structured_prompt_follows_the_json_schema(spec):
    data = json.loads(pose_prompt(spec, "run", lora=True, structured=True))
    assert set(data) <= {"scene", "subjects", "style", "color_palette", "lighting", "mood", "composition", "camera"}
    assert data["color_palette"] == ["#CC2200", "#FFD700"]
    (subject,) = data["subjects"]
    assert set(subject) == {"type", "description", "pose", "position"}
    assert subject["description"].startswith("knight_char, A small knight")
    assert "plume #CC2200" in subject["description"]
    assert subject["pose"].startswith("running to the right")
    assert data["style"] == "flat vector game art"
    assert data["scene"] == "plain light gray background"
    assert FULL_BODY in data["composition"]


def test_structured_without_lora_has_no_trigger(spec):
    assert "knight_char" not in pose_prompt(spec, "idle", structured=True)


def test_reference_prompt_uses_the_view(spec):
    prompt = reference_prompt(spec, "close_up")
    assert "View: close-up of the helmet." in prompt
    assert "knight_char" not in prompt
    assert prompt.index("View:") < prompt.index("Style:") < prompt.index("Plain light gray background")
    assert reference_prompt(spec, "front") != prompt
    with pytest.raises(InvalidInput, match="unknown view"):
        reference_prompt(spec, "top")


def test_caption_holds_trigger_and_view(spec):
    text = caption(spec, "front")
    assert text.startswith("knight_char, ")
    assert "front view, standing straight" in text
    assert "\n" not in text


def test_every_default_view_gives_a_distinct_prompt(characters):
    glitch = characters["glitch"]
    prompts = {reference_prompt(glitch, view) for view in glitch.views}
    captions = {caption(glitch, view) for view in glitch.views}
    assert len(prompts) == len(captions) == len(glitch.views) >= 9
    assert all(c.startswith("glitch_char, ") for c in captions)


def test_glitch_prompt_from_seed_000(characters):
    glitch = characters["glitch"]
    prompt = pose_prompt(glitch, "crouch", lora=True)
    assert prompt.startswith("glitch_char, Petite athletic girl")
    assert "armor circuit lines #FF1493" in prompt
    assert "katana" in prompt and "crouching" in prompt
    assert prompt.endswith("Plain white background.")
    assert prompt.count("white background") == 1
