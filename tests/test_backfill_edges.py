"""Edges a new user meets through the backfill command: a spec with its own reference
images, the journal URL from the environment, two commands on a fresh DAGSTER_HOME,
a bad reference image reported in one line, and each command reporting its own spend."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from dagster_project import backfill
from dagster_project.resources import CharacterLibrary
from samples import TINY, local_resources, own_references

ROOT = Path(__file__).resolve().parents[1]


def library_with_references(tmp_path: Path) -> Path:
    folder = tmp_path / "characters"
    folder.mkdir()
    text = TINY.format(name="tiny").split("views:")[0] + "references_dir: refs\n"
    (folder / "tiny.yaml").write_text(text)
    own_references(folder / "refs")
    return folder


def resources_for(tmp_path, folder, journal_url=None):
    return local_resources(tmp_path, folder, journal_url)


def test_references_dir_materializes_in_dagster(tmp_path, monkeypatch, capsys):
    folder = library_with_references(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert backfill.main([], resources_for(tmp_path, folder)) == 0, capsys.readouterr().err[-2000:]
    with dg.DagsterInstance.get() as instance:
        record = instance.fetch_materializations(dg.AssetKey("reference_images"), limit=1).records[0]
        found = record.asset_materialization.metadata
        assert found["source"].value != "generated" and found["images"].value == 9
        assert found["cost_usd"].value == 0.0 and found["requests"].value == 0


def test_a_bad_reference_image_is_refused_before_any_run(tmp_path, monkeypatch, capsys):
    folder = library_with_references(tmp_path)
    (folder / "refs" / "ref_03.png").write_bytes(b"not a png at all")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert backfill.main([], resources_for(tmp_path, folder)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "references_dir/ref_03.png: does not decode as an image" in err[0], err
    assert not list((tmp_path / "output").glob("*/references/*"))  # nothing copied


def test_a_reference_image_broken_during_a_run_fails_with_one_line_last(tmp_path, monkeypatch, capsys):
    # the same check runs inside reference_images: a file that breaks after the
    # backfill looked at it still fails the run with its one line, last
    folder = library_with_references(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    real_select = backfill.select

    def select_then_break(*args, **kwargs):
        chosen = real_select(*args, **kwargs)
        (folder / "refs" / "ref_03.png").write_bytes(b"not a png at all")
        return chosen

    monkeypatch.setattr(backfill, "select", select_then_break)
    assert backfill.main([], resources_for(tmp_path, folder)) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "ref_03.png" in last and "does not decode" in last and "Traceback" not in last, last


def test_references_outside_the_spec_folder_need_the_resource_to_allow_them(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "characters"
    folder.mkdir()
    own_references(tmp_path / "shared_refs")
    (folder / "tiny.yaml").write_text(TINY.format(name="tiny").split("views:")[0] + "references_dir: ../shared_refs\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert backfill.main(["--dry-run"], resources_for(tmp_path, folder)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "references_dir: '../shared_refs' resolves to" in line and "allow_references_outside: true" in line
    allowed = {**resources_for(tmp_path, folder), "characters": CharacterLibrary(folder=str(folder), allow_references_outside=True)}
    assert backfill.main(["--dry-run"], allowed) == 0, capsys.readouterr().err


def test_journal_url_from_the_environment_reaches_the_dry_run(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY.format(name="tiny"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("FAL_ASSETS_JOURNAL_URL", url)
    resources = resources_for(tmp_path, folder, journal_url=dg.EnvVar("FAL_ASSETS_JOURNAL_URL"))
    assert backfill.main([], resources) == 0, capsys.readouterr().err[-2000:]
    assert (tmp_path / "elsewhere.db").is_file()  # not a file named after the variable
    capsys.readouterr()
    for args in (["--dry-run"], ["--stale", "--dry-run"]):
        assert backfill.main(args, resources) == 0
    out = capsys.readouterr().out
    assert "cached at $0)" in out and "journal not checked" not in out
    assert not list(Path.cwd().glob("FAL_ASSETS_JOURNAL_URL*"))


def test_two_backfills_on_a_fresh_dagster_home(tmp_path):
    work = tmp_path / "project"
    (work / "characters").mkdir(parents=True)
    (work / "characters" / "tiny.yaml").write_text(TINY.format(name="tiny"))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "fresh-home"), "PYTHONPATH": str(ROOT)}
    env.pop("FAL_KEY", None)
    command = [sys.executable, "-m", "dagster_project.backfill", "--stale", "--dry-run"]
    procs = [subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
        assert "tiny (" in out
