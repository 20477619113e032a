"""The nightly refresh asks only for what is missing or stale, after a real local run;
and the pure staleness rules it shares with the sensor and the backfill command."""

import warnings
from dataclasses import replace
from datetime import datetime, timezone

import pytest

warnings.filterwarnings("ignore", message=r".*currently in (beta|preview)")

import dagster as dg  # noqa: E402

from dagster_project import schedules  # noqa: E402
from dagster_project.definitions import build_defs, graph  # noqa: E402
from dagster_project.partitions import join  # noqa: E402
from fal_assets.plan import Recorded, Seen, pose_runs, refresh_needed  # noqa: E402
from samples import TINY, local_resources  # noqa: E402
from fal_assets.spec import load_spec, load_specs, pose_version, spec_version  # noqa: E402

CHAIN = ["character_spec", "reference_images", "training_dataset", "character_lora"]


def test_refresh_rules_on_recorded_versions(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(name="tiny"))
    spec = load_spec(path)
    v = spec_version(spec)
    fresh = Recorded(
        spec=Seen(1, v), references=Seen(2, v), dataset=Seen(3), lora=Seen(4),
        poses={"idle": Seen(5, pose_version(spec, "idle", "final")), "hop": Seen(6, pose_version(spec, "hop", "draft"))},
        sprites={"idle": Seen(7), "hop": Seen(8)}, sheet=Seen(9, "2"),
    )
    assert refresh_needed(spec, fresh).empty  # a pose made with any of the spec's profiles is current

    never = refresh_needed(spec, Recorded())
    assert (never.chain, never.poses, never.sheet) == (True, ("idle", "hop"), True)
    assert never.first_stage().poses == () and not never.first_stage().sheet

    half_way = replace(fresh, references=Seen(10, v))  # LoRA older than its references
    assert refresh_needed(spec, half_way).chain

    other_spec = replace(fresh, spec=Seen(1, "0ld"), references=Seen(2, "0ld"))
    assert refresh_needed(spec, other_spec).chain

    pose_changed = replace(fresh, poses={**fresh.poses, "hop": Seen(6, "0ld")})
    work = refresh_needed(spec, pose_changed)
    assert (work.chain, work.poses, work.sheet) == (False, ("hop",), True)
    assert not work.first_stage().sheet

    cut_before_image = replace(fresh, sprites={"idle": Seen(4), "hop": Seen(8)})
    assert refresh_needed(spec, cut_before_image).poses == ("idle",)

    sheet_old = replace(fresh, sheet=Seen(7, "2"))
    assert refresh_needed(spec, sheet_old).sheet and not refresh_needed(spec, sheet_old).poses
    sheet_short = replace(fresh, sheet=Seen(9, "1"))
    assert refresh_needed(spec, sheet_short).sheet


def test_pose_runs_never_span_an_unwanted_pose_of_the_character():
    order = ["idle", "walk", "run", "jump", "sit", "wave"]
    mine = ["idle", "run", "jump", "sit", "wave", "new"]
    assert pose_runs(order, mine, mine) == [["idle", "run", "jump", "sit", "wave", "new"]]  # walk is not mine: inside is fine
    assert pose_runs(order, mine, ["idle", "jump", "wave", "new"]) == [["idle"], ["jump"], ["wave", "new"]]
    assert pose_runs(order, mine, ["run", "jump"]) == [["run", "jump"]]
    assert pose_runs(order, mine, []) == []


@pytest.fixture
def world(tmp_path):
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY.format(name="tiny"))
    resources = local_resources(tmp_path, folder)
    defs = build_defs(str(folder), resources)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        everything = graph(defs)
        start, end = join("tiny", "idle"), join("tiny", "hop")
        for selection, options in (
            (CHAIN, {"partition_key": "tiny"}),
            (["pose_images", "sprites"], {"tags": {schedules.RANGE_START: start, schedules.RANGE_END: end}}),
            (["sprite_sheet"], {"partition_key": "tiny"}),
        ):
            assert dg.materialize(everything, selection=selection, instance=instance, resources=resources, **options).success
        yield folder, instance, defs.get_repository_def(), resources


def partitions(request):
    if schedules.RANGE_START in request.tags:
        return f"{request.tags[schedules.RANGE_START]}...{request.tags[schedules.RANGE_END]}"
    return request.partition_key


def tick(instance, repo, resources):
    """Every refresh schedule's requests, resolved against its job: {schedule: [(job, partition)]}."""
    when = datetime(2026, 1, 2, 3, 0, tzinfo=timezone.utc)
    out = {}
    for schedule in repo.schedule_defs:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=repo, resources=resources)
        data = repo.get_schedule_def(schedule.name).evaluate_tick(context)
        out[schedule.name] = sorted((schedule.job_name, partitions(r)) for r in data.run_requests)
    return out


def test_refresh_after_a_real_run_asks_only_for_what_changed(world):
    folder, instance, repo, resources = world
    # fresh: only the cost report
    assert tick(instance, repo, resources) == {
        "refresh_character_chain": [], "refresh_poses": [], "refresh_sprite_sheets": [],
        "refresh_cost_report": [("cost_report_job", None)],
    }
    path = folder / "tiny.yaml"
    path.write_text(path.read_text().replace("hopping up in the air", "hopping high up in the air"))
    found = tick(instance, repo, resources)
    assert found["refresh_poses"] == [("poses_job", join("tiny", "hop"))]
    assert found["refresh_character_chain"] == [] and found["refresh_sprite_sheets"] == []  # the sheet waits

    path.write_text(path.read_text().replace("#33CC66", "#CC3366"))
    found = tick(instance, repo, resources)
    assert found["refresh_character_chain"] == [("character_job", "tiny")]
    assert found["refresh_poses"] == []  # not before the LoRA is fresh

    (folder / "blob.yaml").write_text(TINY.format(name="blob"))
    found = tick(instance, repo, resources)
    assert found["refresh_character_chain"] == [("character_job", "tiny")]  # blob has no partitions yet
    reloaded = build_defs(str(folder), resources).get_repository_def()  # what a code location reload loads
    found = tick(instance, reloaded, resources)
    assert found["refresh_character_chain"] == [("character_job", "blob"), ("character_job", "tiny")]


def test_cron_comes_from_the_environment(monkeypatch, library):
    monkeypatch.delenv(schedules.CRON_ENV, raising=False)
    assert {s.cron_schedule for s in build_defs(str(library)).schedules} == {"0 3 * * *"}
    monkeypatch.setenv(schedules.CRON_ENV, "30 1 * * 1-5")
    assert {s.cron_schedule for s in build_defs(str(library)).schedules} == {"30 1 * * 1-5"}
