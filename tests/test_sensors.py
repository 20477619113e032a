"""The character library sensor: new, changed, removed and invalid specs, stage by stage.

Materializations are reported to a real (temporary) instance with the versions the
assets record, so each tick sees what a finished run would have left behind.
"""

import json
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=r".*currently in (beta|preview)")

import dagster as dg  # noqa: E402

from dagster_project.definitions import build_defs  # noqa: E402
from dagster_project.partitions import join  # noqa: E402
from dagster_project.schedules import CHARACTER_TAG, RANGE_END, RANGE_START  # noqa: E402
from fal_assets.spec import load_spec, pose_version, spec_version  # noqa: E402
from samples import local_resources

ROOT = Path(__file__).resolve().parents[1]




@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield instance


@pytest.fixture
def tick(library, instance, tmp_path):
    """Evaluate the sensor as the daemon would, keeping its cursor, on definitions loaded
    from ``library``; ``tick.reload()`` loads them again, as a code location reload does,
    and ``tick.reloads`` lists the reloads the sensor asked for."""
    resources = local_resources(tmp_path, library)
    state = {"cursor": None}
    reloads: list = []

    def load():
        defs = build_defs(str(library), resources, reload=lambda location: reloads.append(location) or "asked")
        state["repo"] = defs.get_repository_def()

    def run():
        repo = state["repo"]
        sensor = repo.get_sensor_def("character_library_sensor")
        context = dg.build_sensor_context(instance=instance, cursor=state["cursor"], repository_def=repo, resources=resources)
        data = sensor.evaluate_tick(context)  # resolves each request against its job: bad keys fail here
        assert not data.dynamic_partitions_requests, "partitions come from the specs, never from the sensor"
        state["cursor"] = data.cursor
        return data

    load()
    run.reload = load
    run.reloads = reloads
    run.cursor = lambda: json.loads(state["cursor"])
    return run


def report(instance, asset, partition, metadata=None, data_version=None):
    tags = {"dagster/data_version": data_version} if data_version else None
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=partition, metadata=metadata or {}, tags=tags))


def chain_done(instance, spec):
    version = spec_version(spec)
    report(instance, "character_spec", spec.name, {"spec_version": version}, version)
    report(instance, "reference_images", spec.name, data_version=version)
    report(instance, "training_dataset", spec.name)
    report(instance, "character_lora", spec.name)


def poses_done(instance, spec, poses=None):
    for pose in poses or spec.poses:
        report(instance, "pose_images", join(spec.name, pose), {"pose_version": pose_version(spec, pose, "final")})
    for pose in poses or spec.poses:
        report(instance, "sprites", join(spec.name, pose))


def sheet_done(instance, spec):
    report(instance, "sprite_sheet", spec.name, {"frames": len(spec.poses)})


def all_done(instance, library):
    for file in sorted(library.glob("*.yaml")):
        spec = load_spec(file)
        chain_done(instance, spec)
        poses_done(instance, spec)
        sheet_done(instance, spec)


def summary(data):
    return sorted((r.job_name, r.partition_key or f"{r.tags[RANGE_START]}...{r.tags[RANGE_END]}") for r in data.run_requests)


def test_new_specs_request_their_chains(tick, library):
    data = tick()
    assert tick.reloads == []  # the loaded partitions are the specs' own
    # the chain first: a pose made before its LoRA would use the old one
    assert summary(data) == [("character_job", "glitch"), ("character_job", "rivet")]
    glitch = next(r for r in data.run_requests if r.partition_key == "glitch")
    assert spec_version(load_spec(library / "glitch.yaml")) in glitch.run_key
    assert glitch.tags[CHARACTER_TAG] == "glitch"
    cursor = tick.cursor()["characters"]["glitch"]
    assert cursor["spec_version"] == spec_version(load_spec(library / "glitch.yaml"))
    assert set(cursor["poses"]) == set(load_spec(library / "glitch.yaml").poses)


def test_unchanged_second_tick_requests_nothing(tick):
    tick()
    again = tick()
    assert again.run_requests == []
    assert "requested before" in again.skip_message


def test_stages_follow_each_other(tick, instance, library):
    glitch = load_spec(library / "glitch.yaml")
    tick()
    chain_done(instance, glitch)
    data = tick()
    # glitch's 8 poses are neighbours in the pose order: one run over the range
    assert summary(data) == [("poses_job", f"{join('glitch', 'idle')}...{join('glitch', 'victory')}")]
    poses_done(instance, glitch)
    assert summary(tick()) == [("sheet_job", "glitch")]
    sheet_done(instance, glitch)
    assert tick().run_requests == []


def test_changed_palette_reruns_everything_of_that_character(tick, instance, library):
    all_done(instance, library)
    assert tick().run_requests == []  # all fresh: nothing to do
    path = library / "glitch.yaml"
    path.write_text(path.read_text().replace('hair: "#A67C52"', 'hair: "#222222"'))
    changed = load_spec(path)
    data = tick()
    assert summary(data) == [("character_job", "glitch")]
    assert spec_version(changed) in data.run_requests[0].run_key
    assert tick.cursor()["characters"]["glitch"]["generation"] == 1
    chain_done(instance, changed)
    data = tick()
    assert summary(data) == [("poses_job", f"{join('glitch', 'idle')}...{join('glitch', 'victory')}")]
    poses_done(instance, changed)
    assert summary(tick()) == [("sheet_job", "glitch")]


def test_changed_pose_reruns_only_that_pose_then_the_sheet(tick, instance, library):
    all_done(instance, library)
    tick()
    path = library / "glitch.yaml"
    path.write_text(path.read_text().replace("calm confident look", "calm confident look, arms crossed"))
    data = tick()
    assert summary(data) == [("poses_job", join("glitch", "idle"))]
    changed = load_spec(path)
    poses_done(instance, changed, ["idle"])
    assert summary(tick()) == [("sheet_job", "glitch")]


def test_going_back_to_an_earlier_spec_runs_again(tick, instance, library):
    path = library / "rivet.yaml"
    original = path.read_text()
    first = tick()
    path.write_text(original.replace("seed: 7", "seed: 8"))
    tick()
    path.write_text(original)
    back = tick()
    keys = {r.run_key for r in first.run_requests}
    assert summary(back) == [("character_job", "rivet")]
    assert back.run_requests[0].run_key not in keys


def test_removed_spec_is_reported_and_reloads_the_partitions(tick, instance, library):
    tick()
    (library / "rivet.yaml").unlink()
    data = tick()
    assert "rivet: spec" in data.skip_message and "removed" in data.skip_message
    assert tick.cursor()["characters"]["rivet"]["removed"] is True
    assert len(tick.reloads) == 1
    tick()
    assert len(tick.reloads) == 1  # asked once per change of the library
    tick.reload()
    again = tick()
    assert "removed" not in again.skip_message  # reported once
    assert "reload" not in again.skip_message and "reload_for" not in tick.cursor()


def test_invalid_spec_is_reported_with_file_and_field_and_the_others_go_on(tick, library):
    path = library / "glitch.yaml"
    path.write_text(path.read_text().replace('hair: "#A67C52"', 'hair: "#A67C5Z"'))
    data = tick()
    assert summary(data) == [("character_job", "rivet")]
    problems = tick.cursor()["problems"]
    assert len(problems) == 1 and problems[0].startswith(f"{path}: palette.hair: ")
    assert "hex" in problems[0]


def test_spec_that_turns_invalid_keeps_its_partitions_and_waits(tick, instance, library):
    tick()
    path = library / "glitch.yaml"
    path.write_text(path.read_text().replace("poses:", "poses: [", 1))
    data = tick()
    assert data.run_requests == []
    assert "glitch: its spec is invalid" in data.skip_message
    assert f"{path}: " in data.skip_message
    assert tick.reloads == []  # a typo being fixed does not take the character's partitions away


def test_character_with_a_run_in_flight_waits(tick, instance, library):
    instance.add_run(dg.DagsterRun(job_name="character_job", run_id="f" * 8, status=dg.DagsterRunStatus.STARTED, tags={CHARACTER_TAG: "glitch"}))
    data = tick()
    assert summary(data) == [("character_job", "rivet")]


def test_new_pose_reloads_the_definitions_then_runs(tick, instance, library):
    all_done(instance, library)
    tick()
    path = library / "glitch.yaml"
    path.write_text(path.read_text().replace("poses:\n", "poses:\n  dance: dancing on one foot, arms up\n", 1))
    data = tick()
    assert data.run_requests == []  # no partition for it yet
    assert len(tick.reloads) == 1 and "glitch: dance" in data.skip_message
    tick.reload()
    data = tick()  # resolved against poses_job: the key exists now
    assert summary(data) == [("poses_job", join("glitch", "dance"))]
    assert len(tick.reloads) == 1


def test_new_spec_reloads_then_runs_its_chain_only(tick, instance, library):
    all_done(instance, library)
    tick()
    text = (library / "rivet.yaml").read_text().replace("name: rivet", "name: bolt")
    (library / "bolt.yaml").write_text(text)
    assert tick().run_requests == [] and len(tick.reloads) == 1
    tick.reload()
    assert summary(tick()) == [("character_job", "bolt")]


def test_a_new_variant_or_animation_reloads_the_definitions_too(tick, instance, library):
    """Variants and animations have static partitions as poses do: adding one needs a reload."""
    all_done(instance, library)
    tick()
    path = library / "glitch.yaml"
    path.write_text(path.read_text().replace("variants:\n", "variants:\n  gold: Recolor the armor plates gold\n", 1))
    data = tick()
    assert len(tick.reloads) == 1 and "variant glitch/idle/gold" in data.skip_message
    tick.reload()
    tick()
    assert len(tick.reloads) == 1  # the reloaded definitions know it: no second reload
    path.write_text(path.read_text().replace("animations:\n", "animations:\n  bow: {pose: idle, motion: bowing slowly and rising again}\n", 1))
    data = tick()
    assert len(tick.reloads) == 2 and "animation glitch/bow" in data.skip_message
