"""The variant assets in Dagster: exactly the real character x pose x variant triples,
mapped to their own base poses; the graph materialized on the local backend and on the
emulator (through the real fal_client) with cost metadata; staleness; the dry run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.definitions import build_defs
from dagster_project.variant_partitions import VariantPartitions, join, sheet_key
from samples import TINY, local_resources

ROOT = Path(__file__).resolve().parents[1]
SENTINEL = "sk-sentinel-variants-0c1d:9e2f"
VARIANTS = """\
palette:
  body: "#33CC66"
variants:
  frost:
    instruction: Recolor the slime an icy frost blue
    palette: {body: "#66CCFF"}
  ember: {instruction: Recolor the slime a glowing ember red, palette: {body: "#E0401A"}, poses: [idle]}
"""


def tiny(name: str) -> str:
    return TINY.format(name=name).replace('palette:\n  body: "#33CC66"\n', VARIANTS)


@pytest.fixture
def slime_library(tmp_path):
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "goo.yaml").write_text(tiny("goo"))
    return folder


# --------------------------------------------------------------------------- partitions


def test_only_the_real_triples(library):
    defs = build_defs(str(library))
    keys = defs.resolve_assets_def("variant_images").partitions_def.get_partition_keys()
    assert len(keys) == 14  # glitch 8 poses x neon_cyan + rivet 6 x night_shift: never a cross product
    assert keys[:2] == ["glitch/idle/neon_cyan", "glitch/run/neon_cyan"] and "rivet/idle/neon_cyan" not in keys
    assert defs.resolve_assets_def("variant_sprites").partitions_def.get_partition_keys() == keys
    assert defs.resolve_assets_def("variant_sheet").partitions_def.get_partition_keys() == ["glitch/neon_cyan", "rivet/night_shift"]


def test_each_variant_reads_its_own_base_pose_and_each_sheet_its_own_variant(library):
    graph = defs_graph(library)
    poses, images = dg.AssetKey("pose_images"), dg.AssetKey("variant_images")
    up = graph.get_parent_partition_keys_for_child("rivet/jump/night_shift", poses, images)
    assert list(up.partitions_subset.get_partition_keys()) == ["rivet/jump"]
    assert sorted(graph.get_child_partition_keys_of_parent("glitch/idle", poses, images)) == ["glitch/idle/neon_cyan"]
    lora_children = graph.get_child_partition_keys_of_parent("rivet", dg.AssetKey("character_lora"), images)
    assert len(lora_children) == 6 and all(k.startswith("rivet/") for k in lora_children)
    sprites_of_sheet = graph.get_parent_partition_keys_for_child("rivet/night_shift", dg.AssetKey("variant_sprites"), dg.AssetKey("variant_sheet"))
    assert len(sprites_of_sheet.partitions_subset.get_partition_keys()) == 6
    base = graph.get_parent_partition_keys_for_child("glitch/neon_cyan", dg.AssetKey("sprite_sheet"), dg.AssetKey("variant_sheet"))
    assert list(base.partitions_subset.get_partition_keys()) == ["glitch"]


def defs_graph(library):
    return build_defs(str(library)).resolve_asset_graph()


def test_some_poses_and_a_range_of_one_variant():
    parts = VariantPartitions({"goo": {"frost": ["idle", "hop"], "ember": ["idle"]}, "ann": {}})
    assert parts.variants.get_partition_keys() == ["goo/idle/frost", "goo/hop/frost", "goo/idle/ember"]
    assert parts.range_of("goo", "frost") == ("goo/idle/frost", "goo/hop/frost")
    in_range = parts.variants.get_partition_keys_in_range(dg.PartitionKeyRange(*parts.range_of("goo", "frost")))
    assert in_range == ["goo/idle/frost", "goo/hop/frost"]
    assert parts.sheets.get_partition_keys() == ["goo/frost", "goo/ember"]


def test_a_library_without_variants_loads(tmp_path):
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "bolt.yaml").write_text(TINY.format(name="bolt"))
    defs = build_defs(str(folder))
    assert defs.resolve_assets_def("variant_images").partitions_def.get_partition_keys() == []
    assert VariantPartitions({}).sheets.get_partition_keys() == []


# --------------------------------------------------------------------------- end to end


def run_demo(tmp_path, folder, backend="local", env=None):
    script = (
        "import sys; from dagster_project.demo import run; "
        f"sys.exit(run(folder={str(folder)!r}, output='output', workdir='.fal-assets', backend={backend!r}))"
    )
    full_env = {**os.environ, "DAGSTER_HOME": str(tmp_path / ".dagster"), "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def latest(tmp_path, asset):
    """Per partition, the newest materialization's metadata."""
    with dg.DagsterInstance.from_config(str(tmp_path / ".dagster")) as instance:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
        out = {}
        for record in records:  # newest first
            out.setdefault(record.asset_materialization.partition, record.asset_materialization.metadata)
        return out


def checks(tmp_path, name):
    with dg.DagsterInstance.from_config(str(tmp_path / ".dagster")) as instance:
        records = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("variant_sheet" if name == "variant_alignment" else "variant_sprites"), name), limit=100)
        return [r for r in records]


@pytest.mark.slow
def test_the_demo_makes_each_variant_for_zero_and_shows_the_estimate(tmp_path, slime_library):
    out = run_demo(tmp_path, slime_library)
    assert "goo variant frost (2 poses, fal-ai/flux-pro/kontext): sprites output/goo/variants/frost/sprite_layers/poses/" in out
    assert "variants: 3 edits of the base poses; on fal about $0.12" in out
    for name, poses in (("frost", {"idle", "hop"}), ("ember", {"idle"})):
        folder = tmp_path / "output" / "goo" / "variants" / name
        assert {p.name for p in (folder / "sprite_layers" / "poses").glob("*.png")} == {f"{p}.png" for p in poses}
        assert set(json.loads((folder / "sheet.json").read_text())["frames"]) == poses
        assert (folder / "sheet.tres").is_file() and (folder / "contact_sheet.png").is_file()
    images = latest(tmp_path, "variant_images")
    assert set(images) == {"goo/idle/frost", "goo/hop/frost", "goo/idle/ember"}
    made = images["goo/idle/frost"]
    for field in ("seed", "endpoint", "request_id", "cost_usd", "estimated_usd", "input_sha256", "variant_version", "billed_mp_out", "preview"):
        assert field in made, field
    assert made["endpoint"].value == "fal-ai/flux-pro/kontext" and made["backend"].value == "local"
    assert made["cost_usd"].value == 0 and made["estimated_usd"].value == pytest.approx(0.04)
    assert made["preview"].value.count("data:image/png;base64,") == 2  # base and variant
    sheet = latest(tmp_path, "variant_sheet")["goo/frost"]
    base = json.loads((tmp_path / "output" / "goo" / "sprite_layers" / "poses" / "poses.json").read_text())
    assert sheet["canvas"].value == f"{base['canvas'][0]}x{base['canvas'][1]}"
    report = (tmp_path / "output" / "_reports" / "cost_report.csv").read_text().splitlines()
    assert report[0].startswith("character,pose,variant,asset,")
    assert sum(",frost,variant_images," in line for line in report) == 2
    assert [r.status.value for r in checks(tmp_path, "variant_alignment")] == ["SUCCEEDED"] * 2

    # staleness from the instance: a variant's text stales that variant only
    from dagster_project.resources import StoreResource
    from dagster_project.variant_runs import recorded_variants, variant_work
    from fal_assets.spec import load_spec

    spec_file = slime_library / "goo.yaml"
    spec_file.write_text(spec_file.read_text().replace("an icy frost blue", "a pale frost blue"))
    spec = load_spec(spec_file)
    store = StoreResource(root=str(tmp_path / "output"))
    os.environ["DAGSTER_HOME"] = str(tmp_path / ".dagster")
    with dg.DagsterInstance.from_config(str(tmp_path / ".dagster")) as instance:
        recorded = recorded_variants(instance, {"goo": spec})["goo"]
    work = variant_work(spec, [], (), True, recorded, store.path("goo", "poses_raw"))
    assert [(w.variant, w.poses) for w in work] == [("frost", ("idle", "hop"))]
    # a new base pose image stales the variants of that pose only
    spec_file.write_text(spec_file.read_text().replace("a pale frost blue", "an icy frost blue"))
    spec = load_spec(spec_file)
    base_idle = store.path("goo", "poses_raw", "idle.png")
    base_idle.write_bytes(store.path("goo", "poses_raw", "hop.png").read_bytes())
    work = variant_work(spec, [], (), True, recorded, store.path("goo", "poses_raw"))
    assert [(w.variant, w.poses) for w in work] == [("frost", ("idle",)), ("ember", ("idle",))]


@pytest.mark.slow
def test_variants_on_the_emulator_through_fal_client(tmp_path, slime_library):
    from fal_assets.emulator import EmulatorProcess

    with EmulatorProcess(concurrency=4) as emulator:
        env = {**emulator.env, "FAL_KEY": SENTINEL}
        run_demo(tmp_path, slime_library, backend="fal", env=env)
        first = emulator.ledger()
        run_demo(tmp_path, slime_library, backend="fal", env=env)
        second = emulator.ledger()
    # 9 references + 1 training + 2 poses + 3 edits, each sent once; the rerun sent nothing
    assert first["submitted"] == 15 and second["submitted"] == 15
    kontext = [row for row in first["billed"] if row["endpoint"] == "fal-ai/flux-pro/kontext"]
    assert len(kontext) == 3 and all(row["cost_usd"] == pytest.approx(0.04) for row in kontext)  # fal's $0.04 per image
    images = latest(tmp_path, "variant_images")
    assert len(images) == 3
    for key, found in images.items():
        assert found["backend"].value == "emulator" and found["cost_kind"].value == "billed"
        assert found["endpoint"].value == "fal-ai/flux-pro/kontext" and found["request_id"].value
    first_run = [m for m in history(tmp_path, "variant_images") if not m["cache_hit"].value]
    assert len(first_run) == 3 and all(m["cost_usd"].value == pytest.approx(0.04) for m in first_run)
    report = latest(tmp_path, "cost_report")[None]
    assert report["billed_usd"].value == pytest.approx(first["total_usd"])  # journal == emulator's ledger
    assert report["event_log"].value["paid_but_not_materialized_usd"] == pytest.approx(0)


def history(tmp_path, asset):
    with dg.DagsterInstance.from_config(str(tmp_path / ".dagster")) as instance:
        return [r.asset_materialization.metadata for r in instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records]


def test_backfill_dry_run_prices_variants(tmp_path, library, capsys):
    from dagster_project.backfill import main
    from dagster_project.demo import fal_for
    from dagster_project.resources import CharacterLibrary, CutoutResource, StoreResource

    resources = {"fal": fal_for("local", str(tmp_path / ".fal-assets")), "store": StoreResource(root=str(tmp_path / "output")),
                 "cutout": CutoutResource(), "characters": CharacterLibrary(folder=str(library))}
    assert main(["--dry-run", "--character", "glitch", "--pose", "idle"], resources) == 0
    out = capsys.readouterr().out
    assert "variants neon_cyan (1 poses, sheet)" in out
    assert "  variant_images    1 request    fal-ai/flux-pro/kontext      $0.04" in out
    assert "    neon_cyan       1 request    fal-ai/flux-pro/kontext      $0.04" in out


@pytest.mark.slow
def test_a_new_base_pose_stales_its_variants_only_in_dagster(tmp_path, slime_library):
    """Dagster's own staleness (the UI's badges) follows the pose -> variant mapping: the
    base pose materialized again stales that pose's variants, not the other pose's."""
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver

    from dagster_project.definitions import graph
    from dagster_project.schedules import CHAIN

    resources = local_resources(tmp_path, slime_library)
    defs = build_defs(str(slime_library), resources)
    everything = graph(defs)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        def run(selection, key):
            assert dg.materialize(everything, selection=selection, partition_key=key, instance=instance, resources=resources).success

        run(list(CHAIN), "goo")
        for pose in ("idle", "hop"):
            run(["pose_images"], f"goo/{pose}")
        for key in ("goo/idle/frost", "goo/hop/frost", "goo/idle/ember"):
            run(["variant_images"], key)
        resolver = get_stale_status_resolver(instance, list(defs.assets))
        assert resolver.get_status(dg.AssetKey("variant_images"), "goo/idle/frost") == StaleStatus.FRESH
        run(["pose_images"], "goo/idle")
        resolver = get_stale_status_resolver(instance, list(defs.assets))
        seen = {k: resolver.get_status(dg.AssetKey("variant_images"), k) for k in ("goo/idle/frost", "goo/idle/ember", "goo/hop/frost")}
        assert seen == {"goo/idle/frost": StaleStatus.STALE, "goo/idle/ember": StaleStatus.STALE, "goo/hop/frost": StaleStatus.FRESH}
