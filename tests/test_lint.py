"""Prompt linter: each rule, its false positives, and the example characters."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fal_assets.lint import LintFinding, lint_prompt, lint_spec
from fal_assets.prompts import pose_prompt
from fal_assets.spec import load_spec, load_specs

CHARACTERS = Path(__file__).resolve().parent.parent / "characters"
KONTEXT = "fal-ai/flux-pro/kontext"


def codes(findings: list[LintFinding]) -> list[str]:
    return [f.code for f in findings]


def excerpts(findings: list[LintFinding], code: str) -> list[str]:
    return [f.excerpt for f in findings if f.code == code]


# --------------------------------------------------------------------------- negative phrasing


@pytest.mark.parametrize(
    "prompt, excerpt",
    [
        ("a knight, no helmet", "no helmet"),
        ("a knight without gloves", "without gloves"),
        ("don't show the sword", "don't show"),
        ("Do not add text", "not add"),
        ("a face that isn't smiling", "isn't smiling"),
        ("avoid blurry edges", "avoid blurry"),
        ("never looking away", "never looking"),
        ("excluding the cape", "excluding the"),
        ("negative prompt: blur", "negative prompt"),
        ("she doesn’t hold a shield", "doesn’t hold"),
    ],
)
def test_negative_phrasing(prompt, excerpt):
    findings = lint_prompt(prompt)
    assert excerpts(findings, "negative-phrasing") == [excerpt]
    finding = findings[0]
    assert finding.severity == "warning"
    assert "describe what you want instead" in finding.message
    start, end = finding.span
    assert prompt[start:end] == excerpt


@pytest.mark.parametrize(
    "prompt",
    [
        "a notebook tucked under her arm",
        "a rope tied in a knot",
        "snow falling on a piano",
        "Nova the cat with a notched ear",
        "a No. 5 jersey",
        "a no-nonsense expression",
        "a nomad wearing a noble cloak, notable scar",
        "sleeveless tunic and fingerless gloves",
        "cannoli on a plate, knotted scarf",
    ],
)
def test_no_false_negative_phrasing(prompt):
    assert "negative-phrasing" not in codes(lint_prompt(prompt))


# --------------------------------------------------------------------------- weight syntax


@pytest.mark.parametrize(
    "prompt, excerpt",
    [
        ("a (red cape:1.5) flowing", "(red cape:1.5)"),
        ("a shiny sword++ in hand", "sword++"),
        ("a ((glowing)) visor", "((glowing))"),
        ("a [detailed] face", "[detailed]"),
        ("a (sharp)++ blade", ")++"),
    ],
)
def test_weight_syntax(prompt, excerpt):
    findings = lint_prompt(prompt)
    assert excerpts(findings, "weight-syntax") == [excerpt]
    assert "no effect on FLUX" in findings[0].message


def test_plain_parentheses_are_fine():
    assert lint_prompt("3D animation style (like Big Hero 6), a mid-air leap") == []


def test_trigger_placeholder_is_an_error():
    findings = lint_prompt("[trigger], a knight")
    assert codes(findings) == ["placeholder"]
    assert findings[0].severity == "error"


# --------------------------------------------------------------------------- hex codes


@pytest.mark.parametrize(
    "prompt",
    [
        "use #FF0000 somewhere",
        "a knight. Colors: #FF0000, #00FF00",
        "Use hot pink (#FF1493).",
        "accents in #123ABC",
    ],
)
def test_untied_hex(prompt):
    findings = [f for f in lint_prompt(prompt) if f.code == "untied-hex"]
    assert findings and all(f.excerpt.startswith("#") for f in findings)
    assert "object it belongs to" in findings[0].message


@pytest.mark.parametrize(
    "prompt",
    [
        "armor lines #FF1493, visor glow #C04DFF",
        "Hot pink (#FF1493) and magenta neon-glowing circuit lines on armor",
        "a #FF0000 cape",
        "the cape in crimson #AA0000",
        "issue #1234 of the comic",
        "an &#123456; entity",
    ],
)
def test_tied_hex(prompt):
    assert "untied-hex" not in codes(lint_prompt(prompt))


# --------------------------------------------------------------------------- trigger word


def test_missing_trigger_with_lora():
    findings = lint_prompt("a knight standing", trigger_word="knight_char", lora=True)
    assert codes(findings) == ["missing-trigger"]
    assert findings[0].severity == "error"


def test_trigger_not_first():
    findings = lint_prompt("a knight, knight_char, standing", trigger_word="knight_char", lora=True)
    assert codes(findings) == ["trigger-not-first"]
    assert findings[0].span == (10, 21)


def test_trigger_inside_a_longer_word_does_not_count():
    assert codes(lint_prompt("knight_chars standing", trigger_word="knight_char", lora=True)) == ["missing-trigger"]


def test_trigger_first_is_clean():
    assert lint_prompt("knight_char, a knight standing", trigger_word="knight_char", lora=True) == []


def test_trigger_ignored_without_lora():
    assert lint_prompt("a knight standing", trigger_word="knight_char") == []


def test_lora_without_known_trigger():
    assert codes(lint_prompt("a knight", lora=True)) == ["missing-trigger"]


# --------------------------------------------------------------------------- kontext


@pytest.mark.parametrize(
    "prompt",
    [
        "Change her pose to a jumping kick",
        "make her taller",
        "change her facial expression to angry",
        "now sitting on a chair",
        "with both arms raised",
        "adjust the proportions to 4 heads tall",
        "make him smile",
    ],
)
def test_kontext_never_for_poses(prompt):
    findings = lint_prompt(prompt, endpoint=KONTEXT)
    assert "kontext-pose" in codes(findings)
    assert all(f.severity == "error" for f in findings if f.code == "kontext-pose")
    # The same words are fine for a text-to-image endpoint.
    assert "kontext-pose" not in codes(lint_prompt(prompt, endpoint="fal-ai/flux-2/lora"))


@pytest.mark.parametrize(
    "prompt",
    [
        "Change the neon glow color from pink to cyan",
        "replace the background with a beach at sunset",
        "warmer expressive lighting from the left",
        "for the purpose of a poster, expose more of the sky",
    ],
)
def test_kontext_edits_are_fine(prompt):
    assert lint_prompt(prompt, endpoint="fal-ai/flux-kontext-lora") == []


# --------------------------------------------------------------------------- misc


def test_empty_prompt():
    assert codes(lint_prompt("   ")) == ["empty-prompt"]


def test_json_prompt_is_linted_by_value():
    prompt = json.dumps(
        {
            "subjects": [{"type": "knight", "description": "knight_char, a knight, no helmet", "pose": "standing"}],
            "color_palette": ["#FF0000", "#00FF00"],
            "scene": "[castle] courtyard",
        }
    )
    findings = lint_prompt(prompt, trigger_word="knight_char", lora=True)
    assert codes(findings) == ["negative-phrasing", "weight-syntax"]
    start, end = findings[0].span
    assert prompt[start:end] == "no helmet"


def test_json_prompt_needs_the_trigger_first():
    first = json.dumps({"scene": "castle", "subjects": [{"type": "knight", "description": "knight_char, a knight"}]})
    assert lint_prompt(first, trigger_word="knight_char", lora=True) == []
    later = json.dumps({"subjects": [{"description": "a knight, knight_char"}]})
    assert codes(lint_prompt(later, trigger_word="knight_char", lora=True)) == ["trigger-not-first"]
    absent = json.dumps({"subjects": [{"description": "a knight"}]})
    assert codes(lint_prompt(absent, trigger_word="knight_char", lora=True)) == ["missing-trigger"]


def test_finding_is_one_readable_line():
    (finding,) = lint_prompt("no helmet")
    text = str(finding)
    assert "negative-phrasing" in text and "'no helmet'" in text and "\n" not in text


# --------------------------------------------------------------------------- specs


@pytest.fixture(scope="module")
def characters():
    return load_specs(CHARACTERS)


def test_example_characters_lint_clean(characters):
    for spec in characters.values():
        assert lint_spec(spec) == [], spec.name


def test_example_pose_prompts_lint_clean(characters):
    for spec in characters.values():
        for pose in spec.poses:
            for structured in (False, True):
                prompt = pose_prompt(spec, pose, lora=True, structured=structured)
                assert lint_prompt(prompt, endpoint=spec.models.pose, trigger_word=spec.trigger_word, lora=True) == []


BAD = textwrap.dedent(
    """\
    name: sloppy
    trigger_word: sloppy_char
    description: "a goblin with no shoes, use #00FF00 somewhere, white background"
    style: (cartoon:1.4) style
    models:
      pose: fal-ai/flux-pro/kontext
    poses:
      idle: standing, without a hat
      run: running
      jump: jumping
    views:
      front: front view
    """
)


def test_lint_spec_reports_each_field_once(tmp_path):
    path = tmp_path / "sloppy.yaml"
    path.write_text(BAD)
    findings = lint_spec(load_spec(path))
    found = {(f.where, f.code) for f in findings}
    assert ("models.pose", "kontext-model") in found
    assert ("description", "background-in-description") in found
    assert ("views", "few-views") in found
    assert ("description", "negative-phrasing") in found
    assert ("description", "untied-hex") in found
    assert ("style", "weight-syntax") in found
    assert ("poses.idle.description", "negative-phrasing") in found
    # Pose-only findings from the full prompt (kontext asked for a pose).
    assert ("poses.run", "kontext-pose") in found
    # "no shoes" is in every pose prompt but reported once, against the description.
    assert sum(1 for f in findings if f.excerpt == "no shoes") == 1
    # A pose endpoint without "lora" means no LoRA, so no trigger word is asked for.
    assert "missing-trigger" not in {f.code for f in findings}
