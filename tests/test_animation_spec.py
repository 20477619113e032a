"""The ``animations:`` section of a character spec: shapes, defaults, one-line errors, seeds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fal_assets.errors import InvalidInput
from fal_assets.spec import load_spec, pose_version, spec_version

BASE = textwrap.dedent(
    """\
    name: knight
    trigger_word: knight_char
    description: a small knight in silver armor with a red plume on the helmet
    style: flat vector game art
    poses:
      idle: standing with the sword lowered
      run: running to the right mid-stride
    """
)


def load(tmp_path: Path, extra: str):
    path = tmp_path / "knight.yaml"
    path.write_text(BASE + textwrap.dedent(extra), encoding="utf-8")
    return load_spec(path)


def problems(tmp_path: Path, extra: str) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        load(tmp_path, extra)
    return caught.value.lines()


def test_no_animations_is_fine(tmp_path):
    assert load(tmp_path, "").animations == {}


def test_full_and_short_forms(tmp_path):
    spec = load(tmp_path, """\
        animations:
          run: {pose: run, frames: 8, fps: 12, loop: true, motion: one full running stride}
          idle: breathing gently, weight shifting
          dash: {pose: run, motion: a quick dash, method: video, frames: 6, fps: 10, loop: false}
        """)
    run, idle, dash = spec.animations["run"], spec.animations["idle"], spec.animations["dash"]
    assert (run.frames, run.fps, run.loop, run.method, run.chain) == (8, 12.0, True, "keyframes", True)
    assert idle.motion == "breathing gently, weight shifting" and idle.pose is None and idle.frames == 8
    assert spec.animation_pose("idle") == "idle" and spec.animation_pose("dash") == "run"
    assert (dash.method, dash.loop, dash.frames) == ("video", False, 6)


@pytest.mark.parametrize(
    "extra, field, words",
    [
        ("animations:\n  walk: {motion: walking}\n", "animations.walk.pose", ["'walk' is not a pose", "set pose:", "idle, run"]),
        ("animations:\n  run: {pose: runn, motion: m}\n", "animations.run.pose", ["'runn' is not a pose", "idle, run"]),
        ("animations:\n  run: {motion: m, frames: 1}\n", "animations.run.frames", ["greater than or equal to 2"]),
        ("animations:\n  run: {motion: m, frames: 49}\n", "animations.run.frames", ["less than or equal to 48"]),
        ("animations:\n  run: {motion: m, frames: 8.5}\n", "animations.run.frames", ["whole number"]),
        ("animations:\n  run: {motion: m, fps: 0}\n", "animations.run.fps", ["greater than 0"]),
        ("animations:\n  run: {motion: m, fps: 120}\n", "animations.run.fps", ["less than or equal to 60"]),
        ("animations:\n  run: {motion: m, method: gif}\n", "animations.run.method", ["keyframes", "video"]),
        ("animations:\n  run: {motion: m, fpss: 3}\n", "animations.run.fpss", ["did you mean 'fps'"]),
        ("animations:\n  run: {fps: 3}\n", "animations.run.motion", ["is required"]),
        ("animations:\n  run:\n", "animations.run", ["is empty", "motion"]),
        ("animations:\n  run: {motion: '  '}\n", "animations.run.motion", ["is empty"]),
        ("animations:\n  Run: {motion: m}\n", "animations.Run", ["not a safe name"]),
        ("animations:\n  run: {motion: m, endpoint: Not An Endpoint}\n", "animations.run.endpoint", ["not a fal endpoint id"]),
        ("animations:\n  run: {motion: m, seed: -1}\n", "animations.run.seed", ["greater than or equal to 0"]),
        ("animations: [run]\n", "animations", ["must be a mapping"]),
    ],
)
def test_bad_animations_are_one_line_each(tmp_path, extra, field, words):
    lines = problems(tmp_path, extra)
    assert len(lines) == 1, lines
    assert f": {field}: " in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def test_frame_seeds_are_pinned_and_distinct(tmp_path):
    spec = load(tmp_path, "animations:\n  run: {motion: m}\n  idle: {motion: breathing, seed: 5}\n")
    seeds = [spec.seed_for_frame("run", i) for i in range(8)]
    assert len(set(seeds)) == 8 and seeds == [spec.seed_for_frame("run", i) for i in range(8)]
    assert spec.seed_for_frame("idle", 0) != spec.seed_for_frame("run", 0)
    again = load(tmp_path, "animations:\n  run: {motion: m}\n  idle: {motion: breathing, seed: 6}\n")
    assert again.seed_for_frame("run", 3) == seeds[3]  # another animation's seed changes nothing here
    assert again.seed_for_frame("idle", 0) != spec.seed_for_frame("idle", 0)
    with pytest.raises(InvalidInput, match="unknown animation; this spec has: run, idle"):
        spec.animation("walk")


def test_animations_never_restale_the_character_or_its_poses(tmp_path):
    plain = load(tmp_path, "")
    animated = load(tmp_path, "animations:\n  run: {motion: one full running stride}\n")
    assert spec_version(plain) == spec_version(animated)
    assert pose_version(plain, "run") == pose_version(animated, "run")


def test_example_characters_have_a_cycle_and_an_idle():
    from fal_assets.spec import load_specs

    specs = load_specs(Path(__file__).resolve().parent.parent / "characters")
    for spec in specs.values():
        assert "idle" in spec.animations, spec.name
        assert {"run", "walk"} & set(spec.animations), spec.name
        assert all(a.loop for a in spec.animations.values())


def test_validate_checks_animation_endpoints_and_notes_unpriced_ones(tmp_path, monkeypatch):
    from fal_assets.input_files import check_spec

    monkeypatch.delenv("FAL_ASSETS_PRICES", raising=False)
    path = tmp_path / "knight.yaml"
    path.write_text(BASE + textwrap.dedent("""\
        animations:
          idle: breathing gently
          dash: {pose: run, motion: a dash, method: video, endpoint: fal-ai/flux-2/flash/edit}
          run: {motion: a stride, endpoint: fal-ai/flux-2/flash/edit}
        """), encoding="utf-8")
    problems, notes = check_spec(path)
    assert [(p.field, p.message.split(";")[0]) for p in problems] == [
        ("animations.dash.endpoint", "fal-ai/flux-2/flash/edit makes images, not video")]
    assert len(notes) == 1 and "animations.idle: refused until priced: no price is known for fal-ai/flux-2/lora/edit" in notes[0]
    assert check_spec(Path(__file__).resolve().parent.parent / "characters" / "glitch.yaml") == ([], [])
