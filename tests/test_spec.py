"""Character specs: loading, one-line errors, seeds, profiles, versions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pydantic import ValidationError

from fal_assets.errors import InvalidInput
from fal_assets.spec import (
    DEFAULT_PROFILES,
    DEFAULT_VIEWS,
    SEED_MAX,
    STANCES,
    CharacterSpec,
    load_spec,
    load_specs,
    pose_version,
    scan_specs,
    spec_version,
)

CHARACTERS = Path(__file__).resolve().parent.parent / "characters"

BASE = textwrap.dedent(
    """\
    name: knight
    trigger_word: knight_char
    description: a small knight in silver armor with a red plume on the helmet
    style: flat vector game art
    palette:
      plume: "#CC2200"
    poses:
      idle: standing with the sword lowered
    """
)


def write(tmp_path: Path, text: str | bytes, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


ALIAS_BOMB = "profiles:\n  draft:\n    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"    {b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)


def load_text(tmp_path: Path, text: str) -> CharacterSpec:
    return load_spec(write(tmp_path, text))


# --------------------------------------------------------------------------- corpus

# (case id, spec text, expected field, words the one message must hold)
BAD_SPECS = [
    ("yaml-syntax", "name: knight\n  trigger_word: x\n", "", ["invalid YAML", "line 2"]),
    ("yaml-unclosed", BASE + "views: [front\n", "", ["invalid YAML", "line 10"]),
    ("yaml-two-docs", BASE + "---\nname: other\n", "", ["single document", "line 9"]),
    ("yaml-python-tag", BASE + "seed: !!python/object:os.system x\n", "", ["line 9", "constructor"]),
    ("empty-file", "", "", ["empty", "name, trigger_word"]),
    ("not-a-mapping", "- knight\n- archer\n", "", ["mapping", "got a list"]),
    ("missing-description", BASE.replace("description: a small knight in silver armor with a red plume on the helmet\n", ""), "description", ["required", "every prompt"]),
    ("missing-poses", BASE.split("poses:")[0], "poses", ["required", "at least one"]),
    ("unknown-top-key", BASE + "pallete: {}\n", "pallete", ["unknown key", "did you mean 'palette'", "allowed keys: name"]),
    ("bad-hex", BASE.replace('"#CC2200"', '"#CC22"'), "palette.plume", ["not a hex colour", "#RRGGBB"]),
    ("unquoted-hex", BASE.replace('"#CC2200"', "#CC2200"), "palette.plume", ["is empty", "starts a YAML comment", 'quote it ("#CC2200")']),
    ("bad-part-name", BASE.replace("  plume:", "  '9lives':"), "palette.9lives", ["not a part name", "starting with a letter"]),
    ("palette-list", BASE.replace('palette:\n  plume: "#CC2200"', "palette: ['#CC2200']"), "palette", ["must be a mapping", "got a list"]),
    ("bad-name", BASE.replace("name: knight", "name: Sir Knight"), "name", ["'Sir Knight'", "lowercase letters, digits"]),
    ("name-too-long", BASE.replace("name: knight", "name: " + "k" * 49), "name", ["not a safe name", "1-48 characters"]),
    ("bad-trigger", BASE.replace("knight_char", "knight char"), "trigger_word", ["not one token", "no spaces"]),
    ("empty-description", BASE.replace("a small knight in silver armor with a red plume on the helmet", "''"), "description", ["empty", "write the text"]),
    ("number-description", BASE.replace("a small knight in silver armor with a red plume on the helmet", "42"), "description", ["must be text", "got 42"]),
    ("bad-pose-name", BASE + "  Run Fast: running\n", "poses.Run Fast", ["not a safe name", "lowercase"]),
    ("duplicate-pose", BASE + "  idle: standing again\n", "poses.idle", ["duplicate pose name", "lines 8 and 9"]),
    ("duplicate-top-key", BASE + "style: other\n", "style", ["duplicate key", "lines 4 and 9"]),
    ("no-poses", BASE.replace("poses:\n  idle: standing with the sword lowered\n", "poses: {}\n"), "poses", ["at least one"]),
    ("empty-pose", BASE + "  run:\n", "poses.run", ["empty", "description"]),
    ("bad-stance", BASE + "  run:\n    description: running\n    stance: flying\n", "poses.run.stance", ["'standing'", "'airborne'", "got 'flying'"]),
    ("unknown-pose-key", BASE + "  run:\n    description: running\n    speed: 3\n", "poses.run.speed", ["unknown key", "description, stance, seed"]),
    ("pose-seed-negative", BASE + "  run: {description: running, seed: -1}\n", "poses.run.seed", ["greater than or equal to 0", "got -1"]),
    ("seed-too-big", BASE + f"seed: {SEED_MAX + 1}\n", "seed", ["less than or equal to 4294967295"]),
    ("seed-text", BASE + "seed: lucky\n", "seed", ["whole number", "got 'lucky'"]),
    ("seed-float", BASE + "seed: 4.5\n", "seed", ["whole number", "got 4.5"]),
    ("seed-bool", BASE + "seed: true\n", "seed", ["whole number", "got True"]),
    ("bad-endpoint", BASE + "models:\n  pose: flux 2 lora\n", "models.pose", ["not a fal endpoint id", "owner/model"]),
    ("models-as-text", BASE + "models: fal-ai/flux-2-pro\n", "models", ["must be a mapping"]),
    ("unknown-model-stage", BASE + "models:\n  poses: fal-ai/flux-2/lora\n", "models.poses", ["did you mean 'pose'", "reference, training, pose"]),
    ("steps-zero", BASE + "training:\n  steps: 0\n", "training.steps", ["greater than or equal to 1", "got 0"]),
    ("learning-rate-negative", BASE + "training:\n  learning_rate: -0.1\n", "training.learning_rate", ["greater than 0"]),
    ("bad-size-preset", BASE + "image_size: huge\n", "image_size", ["'huge' is not a size preset", "portrait_4_3"]),
    ("bad-size-width", BASE + "image_size: {width: 10, height: 1024}\n", "image_size", ["width 10", "64 to 14142"]),
    ("size-missing-height", BASE + "image_size: {width: 768}\n", "image_size", ["width and height"]),
    ("reserved-profile-arg", BASE + "profiles:\n  draft:\n    prompt: hi\n", "profiles.draft.prompt", ["set by the pipeline", "reserved"]),
    ("profile-size", BASE + "profiles:\n  final:\n    image_size: big\n", "profiles.final.image_size", ["not a size preset"]),
    ("profile-date-value", BASE + "profiles:\n  draft:\n    seed_date: 2024-01-01\n", "profiles.draft.seed_date", ["cannot be sent to fal", "numbers"]),
    ("bad-profile-name", BASE + "profiles:\n  Final Cut: {}\n", "profiles.Final Cut", ["not a safe name"]),
    ("missing-references-dir", BASE + "references_dir: refs\n", "references_dir", ["'refs' not found", "existing folder"]),
    ("references-dir-parent", BASE + "references_dir: ..\n", "references_dir", ["'..' resolves to", "outside the spec's folder", "allow_references_outside: true"]),
    ("references-dir-absolute", BASE + "references_dir: /etc\n", "references_dir", ["'/etc' resolves to /etc", "outside the spec's folder"]),
    ("no-views", BASE + "views: {}\n", "views", ["at least one"]),
    ("hex-lost-to-comment", BASE.replace("with a red plume", "with a plume #CC2200 red"), "description", ["#CC2200 starts a YAML comment", "quote the value"]),
    ("hex-comment-in-view", BASE + "views:\n  - front view with cape #AA0000\n", "views.0", ["#AA0000 starts a YAML comment"]),
    # files that are not text, too deep, too big or that expand without bound: refused before parsing
    ("binary-file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "", ["not a text file", "binary data at byte 8", "UTF-8 text"]),
    ("invalid-utf8", BASE.encode() + b"style: caf\xe9\n", "", ["not UTF-8 text", "save it as UTF-8"]),
    ("deep-nesting", BASE + "profiles:\n  draft:\n    x: " + "[" * 5000 + "]" * 5000 + "\n", "", ["nests deeper than 20 levels", "line 11"]),
    ("deep-flow-mapping", BASE + "seed: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "", ["nests deeper than 20 levels"]),
    ("alias-bomb", BASE + ALIAS_BOMB, "", ["expands to more than 100,000 values", "aliases (*name)", "line 1"]),
    ("huge-file", BASE + "# " + "x" * (1024 * 1024) + "\n", "", ["larger than a character spec may be (1 MB)"]),
]


@pytest.mark.parametrize("text, field, words", [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_gives_one_clear_line(tmp_path, text, field, words):
    path = write(tmp_path, text)
    with pytest.raises(InvalidInput) as caught:
        load_spec(path)
    problems = caught.value.problems
    assert len(problems) == 1, caught.value.lines()
    problem = problems[0]
    assert problem.where == str(path)
    assert problem.field == field
    for word in words:
        assert word in problem.message, problem.message
    line = str(problem)
    assert "\n" not in line and line.startswith(str(path))
    assert "pydantic" not in line and "For further information" not in line


def test_corpus_is_big_enough():
    assert len({c[0] for c in BAD_SPECS}) == len(BAD_SPECS) >= 15


def test_every_error_is_reported_at_once(tmp_path):
    text = BASE.replace("name: knight", "name: Knight").replace('"#CC2200"', '"red"') + "seed: -5\n"
    with pytest.raises(InvalidInput) as caught:
        load_text(tmp_path, text)
    assert sorted(p.field for p in caught.value.problems) == ["name", "palette.plume", "seed"]


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(InvalidInput, match="cannot read the file"):
        load_spec(tmp_path / "absent.yaml")


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(BASE.replace("silver", "argent\xe9").encode("latin-1"))
    with pytest.raises(InvalidInput, match="not UTF-8"):
        load_spec(path)


# --------------------------------------------------------------------------- good specs


def test_minimal_spec_gets_defaults(tmp_path):
    spec = load_text(tmp_path, BASE)
    assert spec.background == "plain white background"
    assert spec.models.reference == "fal-ai/flux-2-pro"
    assert spec.models.training == "fal-ai/flux-2-trainer"
    assert spec.models.pose == "fal-ai/flux-2/lora"
    assert spec.training.steps == 1000 and spec.training.learning_rate == 0.00005
    assert spec.image_size == "portrait_4_3"
    assert spec.views == DEFAULT_VIEWS and len(set(spec.views.values())) >= 9
    assert spec.poses["idle"].stance == "standing"
    assert spec.uses_lora
    assert spec.source == tmp_path / "spec.yaml"


def test_pose_forms_and_stance(tmp_path):
    spec = load_text(tmp_path, BASE + "  duck:\n    description: crouching low\n    stance: crouch\n    seed: 9\n")
    assert spec.poses["idle"].description == "standing with the sword lowered"
    assert spec.poses["duck"].stance == "crouch"
    assert spec.seed_for("duck") == 9


def test_yaml_words_as_keys_stay_text(tmp_path):
    # Unquoted `no:`/`on:`/`1:` would be false/true/1 in YAML 1.1; pose names are text.
    spec = load_text(tmp_path, BASE + "  no: shaking the head\n  on: switching the lamp on\n  1: holding up one finger\n")
    assert list(spec.poses) == ["idle", "no", "on", "1"]


def test_hex_codes_are_upper_case(tmp_path):
    spec = load_text(tmp_path, BASE.replace("#CC2200", "#cc2200"))
    assert spec.palette == {"plume": "#CC2200"}


def test_custom_image_size(tmp_path):
    spec = load_text(tmp_path, BASE + "image_size: {width: 768, height: 1024}\n")
    assert spec.image_size == {"width": 768, "height": 1024}
    assert spec.profile("final")["image_size"] == {"width": 768, "height": 1024}


def test_references_dir_is_relative_to_the_spec(tmp_path):
    (tmp_path / "refs").mkdir()
    spec = load_text(tmp_path, BASE + "references_dir: refs\n")
    assert spec.references_path == (tmp_path / "refs").resolve()


def test_seed_for_is_deterministic_and_distinct(tmp_path):
    spec = load_text(tmp_path, BASE + "  run: running\n  jump: jumping\n")
    seeds = {pose: spec.seed_for(pose) for pose in spec.poses}
    assert len(set(seeds.values())) == 3
    assert all(0 <= s <= SEED_MAX for s in seeds.values())
    again = load_text(tmp_path, BASE + "  run: running\n  jump: jumping\n")
    assert {pose: again.seed_for(pose) for pose in again.poses} == seeds
    shifted = load_text(tmp_path, BASE + "seed: 43\n")
    assert shifted.seed_for("idle") == (seeds["idle"] + 1) % (SEED_MAX + 1)
    assert spec.seed_for_view("front") != spec.seed_for_view("back")


def test_seed_wraps_at_the_top(tmp_path):
    spec = load_text(tmp_path, BASE + f"seed: {SEED_MAX}\n")
    assert 0 <= spec.seed_for("idle") <= SEED_MAX


def test_unknown_pose_and_view(tmp_path):
    spec = load_text(tmp_path, BASE)
    with pytest.raises(InvalidInput, match="unknown pose; this spec has: idle"):
        spec.seed_for("dance")
    with pytest.raises(InvalidInput, match="unknown view"):
        spec.view("top")


def test_profiles_defaults_and_overrides(tmp_path):
    spec = load_text(tmp_path, BASE)
    assert spec.profile("draft")["num_inference_steps"] == DEFAULT_PROFILES["draft"]["num_inference_steps"]
    assert spec.profile("final") == {"image_size": "portrait_4_3", **DEFAULT_PROFILES["final"]}
    custom = load_text(tmp_path, BASE + "profiles:\n  draft:\n    num_inference_steps: 8\n  fast:\n    num_inference_steps: 4\n")
    assert custom.profile("draft")["num_inference_steps"] == 8
    assert custom.profile("draft")["image_size"] == DEFAULT_PROFILES["draft"]["image_size"]
    assert custom.profile("fast") == {"image_size": "portrait_4_3", "num_inference_steps": 4}
    assert set(custom.profiles) == {"draft", "final", "fast"}


def test_profile_returns_a_copy(tmp_path):
    spec = load_text(tmp_path, BASE)
    spec.profile("draft")["image_size"]["width"] = 1
    assert spec.profile("draft")["image_size"]["width"] != 1


def test_unknown_profile_is_a_clear_error(tmp_path):
    spec = load_text(tmp_path, BASE)
    with pytest.raises(InvalidInput) as caught:
        spec.profile("ultra")
    assert "unknown profile 'ultra'" in str(caught.value) and "draft, final" in str(caught.value)


def test_spec_is_immutable(tmp_path):
    spec = load_text(tmp_path, BASE)
    with pytest.raises(ValidationError, match="frozen"):
        spec.name = "other"


def test_model_validate_outside_yaml_keeps_clear_messages():
    data = {"name": "k", "trigger_word": "k_char", "description": "d", "style": "s", "poses": {"idle": "standing"}}
    with pytest.raises(ValidationError) as caught:
        CharacterSpec.model_validate({**data, "palette": {"plume": None}})
    assert "an unquoted '#' starts a comment" in str(caught.value)
    assert STANCES == ("standing", "crouch", "sit", "lying", "airborne")


# --------------------------------------------------------------------------- folders


def test_load_specs_by_name(tmp_path):
    write(tmp_path, BASE, "knight.yaml")
    write(tmp_path, BASE.replace("name: knight", "name: archer"), "archer.yml")
    write(tmp_path, "not: a spec", "notes.txt")
    specs = load_specs(tmp_path)
    assert sorted(specs) == ["archer", "knight"]


def test_load_specs_lists_every_bad_file(tmp_path):
    write(tmp_path, BASE, "a.yaml")
    write(tmp_path, BASE.replace("name: knight", "name: Bad Name"), "b.yaml")
    write(tmp_path, "name: [", "c.yaml")
    write(tmp_path, BASE, "d.yaml")  # same name as a.yaml
    with pytest.raises(InvalidInput) as caught:
        load_specs(tmp_path)
    lines = caught.value.lines()
    assert len(lines) == 3
    assert lines[0].startswith(str(tmp_path / "b.yaml") + ": name:")
    assert lines[1].startswith(str(tmp_path / "c.yaml") + ": invalid YAML at line 1")
    assert lines[2].startswith(str(tmp_path / "d.yaml") + ": name: 'knight' is already used by")


def test_scan_specs_never_raises(tmp_path):
    write(tmp_path, BASE, "a.yaml")
    write(tmp_path, "{{{", "b.yaml")
    specs, problems = scan_specs(tmp_path)
    assert list(specs) == ["knight"]
    assert [p.where for p in problems] == [str(tmp_path / "b.yaml")]
    specs, problems = scan_specs(tmp_path / "missing")
    assert specs == {} and len(problems) == 1 and "cannot read the folder" in problems[0].message


def test_example_characters_load():
    specs = load_specs(CHARACTERS)
    assert {"glitch", "rivet"} <= set(specs)
    glitch = specs["glitch"]
    assert glitch.trigger_word == "glitch_char"
    assert len(glitch.poses) >= 6
    assert {"idle", "run", "jump", "wave", "crouch", "attack"} <= set(glitch.poses)
    assert glitch.poses["crouch"].stance == "crouch"
    assert "background" not in glitch.description.lower()
    assert glitch.palette["armor_circuit_lines"] == "#FF1493"
    for spec in specs.values():
        assert len(spec.views) >= 9


# --------------------------------------------------------------------------- versions


def test_versions_are_short_and_stable(tmp_path):
    spec = load_text(tmp_path, BASE)
    again = load_text(tmp_path, BASE)
    assert spec_version(spec) == spec_version(again)
    assert pose_version(spec, "idle") == pose_version(again, "idle")
    assert len(spec_version(spec)) == 12 and spec_version(spec).isalnum()


@pytest.mark.parametrize(
    "change",
    [
        ("a small knight", "a tall knight"),
        ("flat vector game art", "watercolor"),
        ('"#CC2200"', '"#0022CC"'),
        ("knight_char", "knight_lora"),
    ],
    ids=["description", "style", "palette", "trigger"],
)
def test_spec_version_follows_the_look(tmp_path, change):
    before = load_text(tmp_path, BASE)
    after = load_text(tmp_path, BASE.replace(*change))
    assert spec_version(before) != spec_version(after)
    assert pose_version(before, "idle") != pose_version(after, "idle")


@pytest.mark.parametrize(
    "extra",
    [
        "seed: 7\n",
        "models:\n  reference: fal-ai/flux-2-flex\n",
        "training:\n  steps: 1500\n",
        "background: plain light gray background\n",
    ],
    ids=["seed", "models", "training", "background"],
)
def test_spec_version_follows_settings(tmp_path, extra):
    assert spec_version(load_text(tmp_path, BASE)) != spec_version(load_text(tmp_path, BASE + extra))


def test_pose_version_is_per_pose(tmp_path):
    base = load_text(tmp_path, BASE + "  run: running\n")
    changed = load_text(tmp_path, BASE + "  run: sprinting\n")
    assert spec_version(base) == spec_version(changed)
    assert pose_version(base, "idle") == pose_version(changed, "idle")
    assert pose_version(base, "run") != pose_version(changed, "run")
    reseeded = load_text(tmp_path, BASE + "  run: {description: running, seed: 5}\n")
    assert pose_version(base, "run") != pose_version(reseeded, "run")
    # The stance shapes sprite normalisation only; it does not re-buy the image.
    crouched = load_text(tmp_path, BASE + "  run: {description: running, stance: crouch}\n")
    assert pose_version(base, "run") == pose_version(crouched, "run")


def test_pose_version_per_profile(tmp_path):
    base = load_text(tmp_path, BASE)
    draft_changed = load_text(tmp_path, BASE + "profiles:\n  draft:\n    num_inference_steps: 6\n")
    assert pose_version(base, "idle", "final") == pose_version(draft_changed, "idle", "final")
    assert pose_version(base, "idle", "draft") != pose_version(draft_changed, "idle", "draft")
    assert pose_version(base, "idle") != pose_version(draft_changed, "idle")
