"""The Dagster layer end to end: definitions load, the whole graph materializes on the
local backend and on the emulator (through the real fal_client), reruns cost $0, and the
key never lands anywhere."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SENTINEL = "sk-sentinel-dagster-5d1c9e77:aa90b3f1c2"
TINY = """\
name: {name}
trigger_word: {name}_char
description: A small round robot with a single big eye and stubby arms.
style: flat vector cartoon, clean outlines
palette:
  body: "#2E86DE"
  eye: "#F6E05E"
poses:
  idle: standing still, arms at its sides
  jump:
    description: jumping with both arms raised
    stance: airborne
views:
  front: front view, full body
  back: back view, full body
  side_left: left side view, full body
  side_right: right side view, full body
  three_quarter: three-quarter view, full body
  low_angle: seen from a low angle, full body
  high_angle: seen from above, full body
  waving: waving one arm, full body
  close_up: close-up of the face
"""

pytestmark = pytest.mark.slow


def run_demo(tmp_path, folder, backend="local", env=None):
    """Run the demo module in its own process (as `make demo` does) inside tmp_path."""
    script = (
        "import sys; from dagster_project.demo import run; "
        f"sys.exit(run(folder={str(folder)!r}, output='output', workdir='.fal-assets', backend={backend!r}))"
    )
    full_env = {**os.environ, "DAGSTER_HOME": str(tmp_path / ".dagster"), "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=600)
    (tmp_path / f"demo-{backend}.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def materializations(tmp_path, asset):
    """Newest first."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(tmp_path / ".dagster")) as instance:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
        return [r.asset_materialization for r in records]


@pytest.fixture
def tiny_library(tmp_path):
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "bolt.yaml").write_text(TINY.format(name="bolt"))
    return folder


def test_definitions_validate(tmp_path):
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-m", "dagster_project.definitions"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Validation successful" in proc.stdout + proc.stderr


def test_whole_graph_on_the_local_backend_then_a_free_rerun(tmp_path, tiny_library):
    out = run_demo(tmp_path, tiny_library)
    assert "bolt: sprites output/bolt/sprite_layers/poses/" in out
    poses = tmp_path / "output" / "bolt" / "sprite_layers" / "poses"
    assert {p.name for p in poses.glob("*.png")} == {"idle.png", "jump.png"}
    sheet = json.loads((tmp_path / "output" / "bolt" / "sheet.json").read_text())
    assert set(sheet["frames"]) == {"idle", "jump"}
    first = materializations(tmp_path, "pose_images")
    assert {m.metadata["backend"].value for m in first if "backend" in m.metadata} == {"local"}
    assert all(m.metadata["cost_usd"].value == 0 for m in first if "cost_usd" in m.metadata)
    shown = [m.metadata["preview"].value for m in first if "preview" in m.metadata]
    # under 1000 characters the UI draws the picture in place, no "Show Markdown" click
    assert shown and all(";base64," in v and v.startswith("![") and len(v) < 1000 for v in shown)
    assert all("data:image/png;base64," in m.metadata["preview_large"].value for m in first if "preview" in m.metadata)
    for field in ("seed", "endpoint", "request_id", "cache_hit", "size", "prompt", "path"):
        assert all(field in m.metadata for m in first if m.metadata.get("applicable") is None), field

    run_demo(tmp_path, tiny_library)
    again = materializations(tmp_path, "pose_images")[: len(first)]
    generated = [m for m in again if "cache_hit" in m.metadata]
    assert generated and all(m.metadata["cache_hit"].value for m in generated)
    refs = materializations(tmp_path, "reference_images")[0]
    assert refs.metadata["cache_hits"].value == refs.metadata["requests"].value == 9


def test_whole_graph_on_the_emulator_through_fal_client(tmp_path, tiny_library):
    from fal_assets.emulator import EmulatorProcess

    with EmulatorProcess(concurrency=4) as emulator:
        env = {**emulator.env, "FAL_KEY": SENTINEL}
        out = run_demo(tmp_path, tiny_library, backend="fal", env=env)
        first = emulator.ledger()
        run_demo(tmp_path, tiny_library, backend="fal", env=env)
        second = emulator.ledger()
        emulator_log = emulator.log_text()
    assert "billed $" in out and "fal backend" in out
    # 9 references + 1 training + 2 poses, each sent once; the rerun sent nothing
    assert first["submitted"] == 12 and second["submitted"] == 12
    assert second["total_usd"] == pytest.approx(first["total_usd"]) and first["total_usd"] > 6.4  # the 1000-step training alone is $6.40
    poses = materializations(tmp_path, "pose_images")
    assert {m.metadata["backend"].value for m in poses if "backend" in m.metadata} == {"emulator"}
    lora = materializations(tmp_path, "character_lora")[0]
    assert lora.metadata["endpoint"].value == "fal-ai/flux-2-trainer"
    assert (tmp_path / "output" / "bolt" / "lora" / "pytorch_lora_weights.safetensors").is_file()
    report = materializations(tmp_path, "cost_report")[0].metadata
    assert report["billed_usd"].value == pytest.approx(first["total_usd"])  # journal == emulator's ledger
    assert report["event_log"].value["event_log_billed_usd"] == pytest.approx(first["total_usd"])
    assert report["event_log"].value["paid_but_not_materialized_usd"] == pytest.approx(0)
    # the key: never in the instance, the outputs, the journal or the logs
    assert SENTINEL not in emulator_log
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        assert SENTINEL.encode() not in path.read_bytes(), path


def test_one_asset_group_so_the_lineage_opens_expanded(tiny_library):
    # Dagster's lineage draws a lone group without a box; several groups open collapsed
    from dagster_project.assets import GROUP
    from dagster_project.definitions import build_defs

    defs = build_defs(str(tiny_library))
    specs = defs.resolve_asset_graph().asset_nodes
    assert {node.group_name for node in specs} == {GROUP}
    assert {node.tags.get("stage") for node in specs} == {"specs", "dataset", "lora", "poses", "sprites", "reports", "variants"}
