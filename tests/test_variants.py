"""Variants: the spec section, its one-line errors, the rules checked before paying,
the lint, the edit requests per endpoint, and what a variant's version covers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fal_assets.errors import InvalidInput
from fal_assets.spec import DEFAULT_VARIANT_ENDPOINT, load_spec
from fal_assets.validation import validate
from fal_assets.variants import (
    check_variants,
    edit_prompt,
    lint_variants,
    pairs,
    palette_of,
    poses_of,
    seed_for,
    variant_request,
    variant_version,
)

BASE = textwrap.dedent(
    """\
    name: knight
    trigger_word: knight_char
    description: a small knight in silver armor with a red plume on the helmet
    style: flat vector game art
    palette:
      plume: "#CC2200"
      armor: "#C0C0C0"
    poses:
      idle: standing with the sword lowered
      jump:
        description: jumping with the sword raised
        stance: airborne
      crouch:
        description: crouching behind the shield
        stance: crouch
    """
)


def load(tmp_path: Path, variants: str, base: str = BASE):
    path = tmp_path / "knight.yaml"
    path.write_text(base + variants, encoding="utf-8")
    return load_spec(path)


def one_problem(tmp_path: Path, variants: str) -> str:
    with pytest.raises(InvalidInput) as err:
        load(tmp_path, variants)
    lines = err.value.lines()
    assert len(lines) == 1, lines
    return lines[0]


# --------------------------------------------------------------------------- the spec section


def test_text_and_mapping_forms(tmp_path):
    spec = load(tmp_path, textwrap.dedent("""\
        variants:
          night: Change the lighting to a cool blue night palette
          team_red:
            instruction: Recolor the plume and the armor trim for the red team
            palette: {armor: "#8b0000"}
            seed: 7
            poses: [jump, idle]
        """))
    assert spec.variants["night"].instruction.startswith("Change the lighting")
    assert spec.variants["night"].endpoint == DEFAULT_VARIANT_ENDPOINT == "fal-ai/flux-pro/kontext"
    assert poses_of(spec, "night") == ["idle", "jump", "crouch"]
    assert poses_of(spec, "team_red") == ["idle", "jump"]  # the spec's pose order, not the list's
    assert palette_of(spec, "team_red") == {"plume": "#CC2200", "armor": "#8B0000"}  # overrides, upper-cased
    assert seed_for(spec, "idle", "team_red") == seed_for(spec, "jump", "team_red") == 7
    assert seed_for(spec, "idle", "night") != seed_for(spec, "jump", "night")
    assert seed_for(spec, "idle", "night") == seed_for(load(tmp_path, "variants:\n  night: x\n"), "idle", "night")
    # exactly the real pairs, one variant's poses together
    assert pairs(spec) == [("idle", "night"), ("jump", "night"), ("crouch", "night"), ("idle", "team_red"), ("jump", "team_red")]


def test_no_variants_is_the_default(tmp_path):
    spec = load(tmp_path, "")
    assert spec.variants == {} and pairs(spec) == [] and check_variants(spec) == [] and lint_variants(spec) == []


@pytest.mark.parametrize(
    "variants, field, words",
    [
        ("variants:\n  night:\n", "variants.night", ["empty", "instruction"]),
        ("variants:\n  Night: x\n", "variants.Night", ["safe name"]),
        ("variants:\n  night: {instruction: x, poses: [idel]}\n", "variants.night.poses", ["'idel'", "did you mean 'idle'"]),
        ("variants:\n  night: {instruction: x, poses: []}\n", "variants.night.poses", ["empty"]),
        ("variants:\n  night: {instruction: x, poses: [idle, idle]}\n", "variants.night.poses", ["twice"]),
        ("variants:\n  night: {instruction: x, palette: {plumes: \"#000000\"}}\n", "variants.night.palette.plumes", ["did you mean 'plume'", "plume, armor"]),
        ("variants:\n  night: {instruction: x, palette: {plume: red}}\n", "variants.night.palette.plume", ["hex colour"]),
        ("variants:\n  night: {instruction: x, endpoint: Flux Kontext}\n", "variants.night.endpoint", ["not a fal endpoint id"]),
        ("variants:\n  night: {instruction: x, seed: -1}\n", "variants.night.seed", ["greater than or equal to 0"]),
        ("variants:\n  night: {instruction: x, colour: blue}\n", "variants.night.colour", ["unknown key", "instruction, palette"]),
    ],
)
def test_bad_variant_is_one_line_naming_the_field(tmp_path, variants, field, words):
    line = one_problem(tmp_path, variants)
    assert f": {field}: " in line, line
    for word in words:
        assert word in line, line


# --------------------------------------------------------------------------- before paying


def check(tmp_path, variants: str) -> list[str]:
    return [str(p) for p in check_variants(load(tmp_path, variants))]


def test_good_variants_pass(tmp_path):
    (tmp_path / "stripes.png").write_bytes(b"")  # only its presence is checked here
    assert check(tmp_path, textwrap.dedent("""\
        variants:
          night: Change the lighting to a cool blue night palette
          lora_skin: {instruction: Make the armor gold, endpoint: fal-ai/flux-2/flash/edit, references: [stripes.png]}
        """)) == []


def test_an_endpoint_that_does_not_edit_is_refused(tmp_path):
    (line,) = check(tmp_path, "variants:\n  night: {instruction: x, endpoint: fal-ai/flux-2-pro}\n")
    assert "variants.night.endpoint" in line and "text-to-image endpoint" in line and "fal-ai/flux-pro/kontext" in line


def test_an_unknown_endpoint_gets_the_catalog_suggestion(tmp_path):
    (line,) = check(tmp_path, "variants:\n  night: {instruction: x, endpoint: fal-ai/flux-pro/kontxt}\n")
    assert "variants.night.endpoint" in line and "fal-ai/flux-pro/kontext" in line


def test_kontext_takes_one_image(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (line,) = check(tmp_path, "variants:\n  night: {instruction: x, references: [a.png]}\n")
    assert "variants.night.references" in line and "one input image (image_url)" in line and "2 (1 references)" in line


def test_flux2_lora_edit_takes_at_most_three_images(tmp_path):
    for name in "abc":
        (tmp_path / f"{name}.png").write_bytes(b"")
    lines = check(tmp_path, "variants:\n  gold: {instruction: x, endpoint: fal-ai/flux-2/lora/edit, references: [a.png, b.png, c.png]}\n")
    assert any("at most 3 input images (image_urls)" in line and "4 (3 references)" in line for line in lines), lines


def test_missing_reference_file(tmp_path):
    (line,) = check(tmp_path, "variants:\n  gold: {instruction: x, endpoint: fal-ai/flux-2/flash/edit, references: [gone.png]}\n")
    assert "variants.gold.references" in line and "'gone.png' not found" in line


def test_an_unpriced_endpoint_is_refused_never_assumed_free(tmp_path):
    (line,) = check(tmp_path, "variants:\n  gold: {instruction: x, endpoint: fal-ai/flux-2/lora/edit}\n")
    assert "variants.gold.endpoint" in line and "refused: no price is known for fal-ai/flux-2/lora/edit" in line


def test_a_flux1_lora_edit_cannot_take_the_flux2_lora(tmp_path):
    lines = check(tmp_path, "variants:\n  gold: {instruction: x, endpoint: fal-ai/flux-kontext-lora}\n")
    assert any("takes FLUX.1 LoRAs; the character's LoRA is FLUX.2" in line for line in lines), lines


# --------------------------------------------------------------------------- lint


@pytest.mark.parametrize("text", ["make her jump higher", "give him an angry expression", "change her pose to a crouch",
                                  "make him taller", "Recolor the armor gold while smiling"])
def test_pose_changing_text_is_a_warning(tmp_path, text):
    spec = load(tmp_path, f"variants:\n  bad: {text}\n")
    findings = [f for f in lint_variants(spec) if f.code == "edit-pose"]
    assert findings and findings[0].severity == "warning" and findings[0].where == "variants.bad"
    assert "never a new pose" in findings[0].message


def test_colour_and_lighting_edits_lint_clean(tmp_path):
    spec = load(tmp_path, "variants:\n  night: Change the plume from red to cyan and the lighting to a cool night\n")
    assert lint_variants(spec) == []


def test_negative_phrasing_in_an_instruction_is_linted_too(tmp_path):
    spec = load(tmp_path, "variants:\n  night: Recolor the plume blue without glow\n")
    assert [f.code for f in lint_variants(spec)] == ["negative-phrasing"]


# --------------------------------------------------------------------------- requests


def test_kontext_request_shape(tmp_path):
    spec = load(tmp_path, "variants:\n  team_red: {instruction: Recolor the armor for the red team, palette: {armor: \"#8B0000\"}}\n")
    base = tmp_path / "idle.png"
    request = variant_request(spec, "idle", "team_red", base, size=(768, 1024))
    assert request.endpoint == "fal-ai/flux-pro/kontext"
    assert request.files == {"image_url": base}  # one image_url, never image_urls
    assert request.arguments["aspect_ratio"] == "3:4"  # the base's ratio, so the frame keeps its shape
    assert request.arguments["output_format"] == "png" and "image_urls" not in request.arguments and "image_size" not in request.arguments
    assert request.arguments["prompt"] == (
        "Recolor the armor for the red team. Colors: armor from #C0C0C0 to #8B0000. Everything else stays exactly the same."
    )
    assert request.labels == {"character": "knight", "pose": "idle", "variant": "team_red", "asset": "variant_images"}
    validate(request.endpoint, {**request.arguments, "image_url": "https://example.invalid/idle.png"})
    # a ratio Kontext does not list: the input's ratio (its default) instead
    assert "aspect_ratio" not in variant_request(spec, "idle", "team_red", base, size=(700, 1000)).arguments


def test_flux2_edit_request_shape(tmp_path):
    (tmp_path / "stripes.png").write_bytes(b"")
    spec = load(tmp_path, "variants:\n  gold: {instruction: Make the armor gold, endpoint: fal-ai/flux-2/flash/edit, references: [stripes.png]}\n")
    request = variant_request(spec, "jump", "gold", tmp_path / "jump.png", size=(768, 1024))
    assert request.files == {"image_urls.0": tmp_path / "jump.png", "image_urls.1": (tmp_path / "stripes.png").resolve()}
    assert request.arguments["image_urls"] == ["", ""] and request.arguments["image_size"] == {"width": 768, "height": 1024}


def test_lora_edit_request_leads_with_the_trigger_word(tmp_path):
    spec = load(tmp_path, "variants:\n  gold: {instruction: Make the armor gold, endpoint: fal-ai/flux-2/lora/edit}\n")
    request = variant_request(spec, "idle", "gold", tmp_path / "idle.png", size=(768, 1024), lora_weights=tmp_path / "lora.safetensors")
    assert edit_prompt(spec, "gold").startswith("knight_char, Make the armor gold.")
    assert request.files["loras.0.path"] == tmp_path / "lora.safetensors"
    assert request.arguments["loras"] == [{"path": "", "scale": 1.0}]


# --------------------------------------------------------------------------- versions


def test_a_variant_version_follows_its_own_text_only(tmp_path):
    two = "variants:\n  night: Change the lighting to night\n  day: Change the lighting to noon\n"
    spec = load(tmp_path, two)
    edited = load(tmp_path, two.replace("to night", "to a blue night"))
    assert variant_version(spec, "idle", "night") != variant_version(edited, "idle", "night")
    assert variant_version(spec, "idle", "day") == variant_version(edited, "idle", "day")  # the other variant is untouched
    stance = load(tmp_path, two, BASE.replace("stance: crouch", "stance: standing"))
    assert variant_version(spec, "crouch", "night") == variant_version(stance, "crouch", "night")
    palette = load(tmp_path, two.replace("  night: Change the lighting to night", "  night: {instruction: Change the lighting to night, palette: {plume: \"#0000FF\"}}"))
    assert variant_version(spec, "idle", "night") != variant_version(palette, "idle", "night")
    assert variant_version(spec, "idle", "day") == variant_version(palette, "idle", "day")


def test_fal_assets_validate_checks_variants(tmp_path):
    from fal_assets.input_files import check_spec

    spec = load(tmp_path, "variants:\n  bad: {instruction: make her jump, endpoint: fal-ai/flux-2-pro}\n")
    problems, notes = check_spec(spec.source)
    assert [p.field for p in problems] == ["variants.bad.endpoint"]
    assert any("edit-pose" in note and "variants.bad" in note for note in notes)


def test_a_reference_outside_the_spec_folder_is_refused(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    outside.write_bytes(b"")
    (line,) = check(tmp_path, f"variants:\n  gold: {{instruction: x, endpoint: fal-ai/flux-2/flash/edit, references: [../{outside.name}]}}\n")
    assert "variants.gold.references" in line and "outside the spec's folder" in line
