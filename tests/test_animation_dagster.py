"""Animations in Dagster end to end: the real character x animation partitions, a
materialization on the local backend and on the emulator (through the real fal_client)
with per-frame cost, checks, free reruns, and a new fps that re-exports without new frames."""

import json
import re

import pytest

from tests.test_dagster import TINY, materializations, run_demo

pytestmark = pytest.mark.slow

ANIMATED = TINY.replace(
    "views:",
    """\
image_size: {width: 512, height: 640}
animations:
  idle: {frames: 4, fps: 8, motion: breathing gently in place, endpoint: fal-ai/flux-2/flash/edit}
  hop: {pose: idle, frames: 4, fps: 10, motion: one small hop in place, method: video}
views:""",
)


@pytest.fixture
def animated_library(tmp_path):
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "bolt.yaml").write_text(ANIMATED.replace("{name}", "bolt"))
    (folder / "still.yaml").write_text(TINY.format(name="still"))  # no animations: no animation partitions
    return folder


def test_partitions_are_the_real_character_animation_pairs(animated_library):
    from dagster_project.definitions import build_defs

    defs = build_defs(str(animated_library))
    frames = next(a for a in defs.assets if a.key.to_user_string() == "animation_frames")
    assert frames.partitions_def.get_partition_keys() == ["bolt/idle", "bolt/hop"]
    sheet = next(a for a in defs.assets if a.key.to_user_string() == "animated_sheet")
    assert sheet.partitions_def.get_partition_keys() == ["bolt"]


def check_outputs(tmp_path):
    character = tmp_path / "output" / "bolt"
    atlas = json.loads((character / "animations.json").read_text())
    assert list(atlas["frames"]) == [f"idle/{i:03d}" for i in range(4)] + [f"hop/{i:03d}" for i in range(4)]
    tres = (character / "animations.tres").read_text()
    assert re.findall(r'"name": &"([^"]+)",\n"speed": ([0-9.]+)', tres) == [("idle", "8.0"), ("hop", "10.0")]
    tags = json.loads((character / "animations.aseprite.json").read_text())["meta"]["frameTags"]
    assert [(t["name"], t["from"], t["to"]) for t in tags] == [("idle", 0, 3), ("hop", 4, 7)]
    return character


def test_local_backend_then_a_new_fps_reexports_without_new_frames(tmp_path, animated_library):
    out = run_demo(tmp_path, animated_library)
    assert "bolt: animations idle (4 frames at 8 fps, loop, keyframes on fal-ai/flux-2/flash/edit, billed $0.00, on fal $0.055)" in out
    assert "hop (4 frames at 10 fps, loop, video on fal-ai/kling-video/v2.5-turbo/pro/image-to-video, billed $0.00, on fal $0.350)" in out
    assert "still: animations" not in out
    character = check_outputs(tmp_path)
    frames = {m.partition: m.metadata for m in materializations(tmp_path, "animation_frames")}
    idle = frames["bolt/idle"]
    assert idle["backend"].value == "local" and idle["cost_usd"].value == 0 and idle["estimated_usd"].value == pytest.approx(0.055)
    assert idle["cost_per_frame_usd"].value == [0.005 * 2, 0.005 * 3, 0.005 * 3, 0.005 * 3]
    assert len(set(idle["seeds"].value)) == 4
    assert frames["bolt/hop"]["cost_per_frame_usd"].value == [0.0875] * 4
    sprites = {m.partition: m.metadata for m in materializations(tmp_path, "animation_sprites")}
    assert "data:image/gif;base64," in sprites["bolt/hop"]["preview"].value
    assert {s["canvas"].value for s in sprites.values()} and all(s["problems"].value == {"frames": [], "canvas": [], "loop": []} for s in sprites.values())
    first_frames = {p: p.read_bytes() for p in (character / "animations").rglob("frames/*.png")}

    # a new fps: the frames are current, only the sheet is stale; re-running sends nothing
    from fal_assets.animation import refresh_needed
    from fal_assets.spec import load_spec

    spec_path = animated_library / "bolt.yaml"
    spec_path.write_text(spec_path.read_text().replace("frames: 4, fps: 8,", "frames: 4, fps: 16,"))
    spec = load_spec(spec_path)
    made = {p.split("/")[1]: m["frames_version"].value for p, m in frames.items()}
    exported = materializations(tmp_path, "animated_sheet")[0].metadata["export_versions"].value
    stale = refresh_needed(spec, made, exported)
    assert stale.frames == () and stale.sheet
    out = run_demo(tmp_path, animated_library)
    assert "sent 0 new requests" in out
    assert re.findall(r'"name": &"idle",\n"speed": ([0-9.]+)', (character / "animations.tres").read_text()) == ["16.0"]
    assert {p: p.read_bytes() for p in (character / "animations").rglob("frames/*.png")} == first_frames


def test_emulator_bills_each_frame_once(tmp_path, animated_library):
    from fal_assets.emulator import EmulatorProcess
    from tests.test_dagster import SENTINEL

    with EmulatorProcess(concurrency=4) as emulator:
        env = {**emulator.env, "FAL_KEY": SENTINEL}
        run_demo(tmp_path, animated_library, backend="fal", env=env)
        first = emulator.ledger()
        run_demo(tmp_path, animated_library, backend="fal", env=env)
        second = emulator.ledger()
    check_outputs(tmp_path)
    frames = {m.partition: m.metadata for m in materializations(tmp_path, "animation_frames")[-2:]}
    idle, hop = frames["bolt/idle"], frames["bolt/hop"]
    assert idle["backend"].value == "emulator" and idle["cost_kind"].value == "billed"
    assert idle["cost_usd"].value == pytest.approx(0.055) and hop["cost_usd"].value == pytest.approx(0.35)
    assert idle["requests"].value == 4 and hop["requests"].value == 1
    # 9 reference images (the same prompts for both characters: sent once), 2 trainings, 4 poses, 4 keyframes, 1 clip;
    # the rerun sent nothing
    assert first["submitted"] == 9 + 2 + 4 + 5 and second["submitted"] == first["submitted"]
    billed = [job for job in first.get("jobs", []) if "kling" in str(job.get("endpoint", ""))]
    if billed:
        assert sum(j.get("cost_usd", 0) for j in billed) == pytest.approx(0.35)
    report = materializations(tmp_path, "cost_report")[0].metadata
    assert report["billed_usd"].value == pytest.approx(first["total_usd"])  # the journal == the emulator's ledger
    assert report["event_log"].value["paid_but_not_materialized_usd"] == pytest.approx(0)  # animation frames recorded their cost
