"""Partitions are exactly the real character x pose pairs, and Dagster maps them exactly."""

import dagster as dg
import pytest

from dagster_project.definitions import build_defs, graph
from dagster_project.partitions import LibraryPartitions, join, split
from dagster_project.schedules import CHAIN
from fal_assets.spec import load_specs
from samples import TINY, local_resources


@pytest.fixture
def defs(library):
    return build_defs(str(library))


def test_only_the_real_pairs(defs, library):
    specs = load_specs(library)
    keys = defs.resolve_assets_def("pose_images").partitions_def.get_partition_keys()
    real = [join(name, pose) for name, spec in specs.items() for pose in spec.poses]
    assert keys == real and len(keys) == 14  # glitch 8 + rivet 6, not 2 x 11 names
    assert defs.resolve_assets_def("sprites").partitions_def.get_partition_keys() == real
    assert defs.resolve_assets_def("character_lora").partitions_def.get_partition_keys() == ["glitch", "rivet"]
    assert "glitch/walk" not in keys and "rivet/victory" not in keys


def test_a_range_of_one_characters_poses_touches_no_other(defs):
    poses = defs.resolve_assets_def("pose_images").partitions_def
    in_range = poses.get_partition_keys_in_range(dg.PartitionKeyRange("glitch/idle", "glitch/victory"))
    assert [split(k)[0] for k in in_range] == ["glitch"] * 8


def test_each_pose_reads_its_own_character_and_each_sheet_its_own_poses(defs):
    asset_graph = defs.resolve_asset_graph()
    lora, poses, sheet = dg.AssetKey("character_lora"), dg.AssetKey("pose_images"), dg.AssetKey("sprite_sheet")
    up = asset_graph.get_parent_partition_keys_for_child("rivet/walk", lora, poses)
    assert list(up.partitions_subset.get_partition_keys()) == ["rivet"]
    down = asset_graph.get_child_partition_keys_of_parent("glitch", lora, poses)
    assert sorted(down) == sorted(join("glitch", p) for p in ["idle", "run", "jump", "wave", "crouch", "attack", "sit", "victory"])
    sprites_of_sheet = asset_graph.get_parent_partition_keys_for_child("rivet", dg.AssetKey("sprites"), sheet)
    assert sorted(sprites_of_sheet.partitions_subset.get_partition_keys()) == sorted(
        join("rivet", p) for p in ["idle", "walk", "jump", "repair", "sleep", "wave"])


def test_an_empty_library_loads():
    parts = LibraryPartitions({})
    assert parts.poses.get_partition_keys() == [] and parts.missing({}) == {}


def test_a_new_palette_makes_only_that_characters_poses_stale_in_dagster(tmp_path):
    """Dagster's own staleness (the UI's "stale" badges) follows the static mapping:
    a new ``character_spec`` data version for one character stales its poses only."""
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver  # Dagster's own test helper

    folder = tmp_path / "characters"
    folder.mkdir()
    for name in ("ann", "bob"):
        (folder / f"{name}.yaml").write_text(TINY.format(name=name))
    resources = local_resources(tmp_path, folder)
    defs = build_defs(str(folder), resources)
    everything = graph(defs)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        def run(selection, key):
            assert dg.materialize(everything, selection=selection, partition_key=key, instance=instance, resources=resources).success

        for name in ("ann", "bob"):
            run(list(CHAIN), name)
            run(["pose_images"], join(name, "idle"))
        resolver = get_stale_status_resolver(instance, list(defs.assets))
        assert resolver.get_status(dg.AssetKey("pose_images"), "ann/idle") == StaleStatus.FRESH
        path = folder / "ann.yaml"
        path.write_text(path.read_text().replace("#33CC66", "#CC3366"))
        run(["character_spec"], "ann")
        resolver = get_stale_status_resolver(instance, list(defs.assets))
        seen = {p: resolver.get_status(dg.AssetKey("pose_images"), p) for p in ("ann/idle", "bob/idle")}
        assert seen == {"ann/idle": StaleStatus.STALE, "bob/idle": StaleStatus.FRESH}
