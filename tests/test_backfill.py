"""The backfill command CI runs: dry-run plans and prices, git selection, bad input,
and a real local backfill whose second run costs nothing."""

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=r".*currently in (beta|preview)")

from dagster_project import backfill  # noqa: E402
from fal_assets.variant_plan import plan_variants
from fal_assets.plan import plan_character  # noqa: E402
from fal_assets.pricing import estimate  # noqa: E402
from fal_assets.spec import load_spec, load_specs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
from samples import TINY, local_resources  # noqa: E402


def resources_for(tmp_path, folder):
    return local_resources(tmp_path, folder)


def dollars(text: str) -> float:
    return float(text.lstrip("$"))




def test_plan_prices_every_request_with_the_pricing_rules():
    spec = load_spec(ROOT / "characters" / "glitch.yaml")
    plan = plan_character(spec, profile="draft")
    stages = [p.stage for p in plan]
    assert stages.count("reference_images") == len(spec.views)
    assert stages.count("character_lora") == 1
    assert [p.subject for p in plan if p.stage == "pose_images"] == list(spec.poses)
    for p in plan:
        assert p.estimate_usd == estimate(p.endpoint, p.arguments).cost_usd > 0
    draft = next(p for p in plan if p.stage == "pose_images")
    assert draft.arguments["num_inference_steps"] == 12 and draft.arguments["loras"][0]["path"].startswith("upload:")
    only = plan_character(spec, ["run"], chain=False)
    assert [(p.stage, p.subject) for p in only] == [("pose_images", "run")]


def test_dry_run_lists_stages_and_a_total_that_is_the_sum_of_the_estimates(tmp_path, library, capsys, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert backfill.main(["--dry-run"], resources_for(tmp_path, library)) == 0
    out = capsys.readouterr().out
    expected = 0.0
    for name, spec in load_specs(library).items():
        plan = plan_character(spec) + plan_variants(spec)
        expected += sum(estimate(p.endpoint, p.arguments, input_sizes=[(768, 1024)] if p.stage == "variant_images" else None).cost_usd for p in plan)
        for stage in ("reference_images", "character_lora", "pose_images", "variant_images"):
            count = sum(p.stage == stage for p in plan)
            assert re.search(rf"^  {stage}\s+{count} requests?\s", out, re.M), (stage, out)
    total = re.search(r"^total: (\$[0-9.]+) for (\d+) requests \(0 cached", out, re.M)
    assert total, out
    assert dollars(total.group(1)) == pytest.approx(expected, abs=1e-6)
    assert int(total.group(2)) == sum(len(plan_character(s)) + len(plan_variants(s)) for s in load_specs(library).values())
    assert not (tmp_path / ".dagster").exists() and not (tmp_path / "work").exists()  # a dry run writes nothing


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True, capture_output=True)


def test_changed_since_picks_the_specs_changed_in_git(tmp_path, library, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q")
    (library / "old.yaml").write_text(TINY.format(name="old"))
    git(tmp_path, "add", "characters")
    git(tmp_path, "commit", "-q", "-m", "specs")
    rivet = library / "rivet.yaml"
    rivet.write_text(rivet.read_text().replace('"#F2A541"', '"#F2A542"'))
    (library / "old.yaml").unlink()
    git(tmp_path, "commit", "-q", "-am", "recolour rivet, drop old")
    assert backfill.main(["--changed-since", "HEAD~1", "--dry-run"], resources_for(tmp_path, library)) == 0
    captured = capsys.readouterr()
    assert re.search(r"^rivet \(", captured.out, re.M) and not re.search(r"^glitch \(", captured.out, re.M)
    assert "old.yaml: removed since HEAD~1" in captured.err

    assert backfill.main(["--changed-since", "no-such-ref", "--dry-run"], resources_for(tmp_path, library)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("--changed-since: no-such-ref: ")


def test_bad_character_exits_2_with_one_line(tmp_path, library):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(tmp_path / ".dagster")}
    env.pop("FAL_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "dagster_project.backfill", "--character", "nobody", "--dry-run"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "'nobody' is not a character" in lines[0] and "glitch, rivet" in lines[0]


@pytest.mark.parametrize("args, message", [
    (["--pose", "moonwalk"], "--pose: 'moonwalk' is not a pose"),
    (["--profile", "ultra"], "--profile: "),
])
def test_bad_pose_or_profile_exits_2(tmp_path, library, capsys, args, message):
    assert backfill.main([*args, "--dry-run"], resources_for(tmp_path, library)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)


def test_invalid_spec_exits_2_naming_file_and_field(tmp_path, library, capsys):
    path = library / "glitch.yaml"
    path.write_text(path.read_text().replace('hair: "#A67C52"', 'hair: "#A67C5Z"'))
    assert backfill.main(["--dry-run"], resources_for(tmp_path, library)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [line for line in err if line.startswith(f"{path}: palette.hair: ")] and len(err) == 1


def test_real_backfill_then_a_second_run_is_all_cache_hits(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY.format(name="tiny"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".dagster"))
    monkeypatch.chdir(tmp_path)
    resources = resources_for(tmp_path, folder)
    plan = plan_character(load_spec(folder / "tiny.yaml"))

    assert backfill.main([], resources) == 0, capsys.readouterr().err[-3000:]
    out = capsys.readouterr().out
    assert "tiny: chain done" in out and "tiny: poses idle, hop done" in out and "tiny: sprite_sheet done" in out
    assert f"this command sent {len(plan)} new requests: billed $0.00" in out  # the local backend bills nothing
    assert (tmp_path / "output" / "tiny" / "sprite_layers").is_dir()

    assert backfill.main([], resources) == 0
    assert "this command sent 0 new requests: billed $0.00 (fal's prices: $0.00)" in capsys.readouterr().out

    assert backfill.main(["--dry-run"], resources) == 0
    assert f"total: $0.00 for {len(plan)} requests ({len(plan)} cached at $0)" in capsys.readouterr().out

    assert backfill.main(["--stale", "--dry-run"], resources) == 0
    assert "tiny (" in (out := capsys.readouterr().out) and "nothing (fresh)" in out

    spec = folder / "tiny.yaml"
    spec.write_text(spec.read_text().replace("hopping up in the air", "hopping high up in the air"))
    assert backfill.main(["--stale", "--dry-run"], resources) == 0
    out = capsys.readouterr().out
    assert "tiny (" in out and "poses hop; sprite_sheet" in out and "chain" not in out
    assert re.search(r"^  pose_images\s+1 request\s", out, re.M)

    # new references: the old dataset zip and LoRA are on disk, but both will be made anew
    spec.write_text(spec.read_text().replace("flat pixel art", "flat pixel art, thick outlines"))
    assert backfill.main(["--dry-run"], resources) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  reference_images\s+9 requests\s+\S+\s+\$[0-9.]+$", out, re.M), out
    assert re.search(r"^  character_lora\s+1 request\s+\S+\s+\$6\.40$", out, re.M), out
    assert re.search(r"^  pose_images\s+2 requests\s+\S+\s+\$[0-9.]+$", out, re.M), out
