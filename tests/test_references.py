"""A spec's own reference images: confined to the spec's folder, checked before a run
(``fal-assets validate`` and the backfill), each problem one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from fal_assets import references
from fal_assets.cli import app
from fal_assets.spec import load_spec

from samples import own_references

SPEC = "name: me\ntrigger_word: me_char\ndescription: a knight\nstyle: flat\nposes: {idle: standing}\nreferences_dir: refs\n"


def library(tmp_path: Path) -> Path:
    """A spec beside a folder of nine good reference images."""
    (tmp_path / "lib").mkdir()
    own_references(tmp_path / "lib" / "refs")
    spec = tmp_path / "lib" / "me.yaml"
    spec.write_text(SPEC)
    return spec


def break_file(refs: Path, tmp_path: Path) -> None:
    (refs / "ref_03.png").write_bytes(b"not a png at all")


def small_image(refs: Path, tmp_path: Path) -> None:
    Image.new("RGB", (512, 700), "white").save(refs / "ref_03.png")


def truncated(refs: Path, tmp_path: Path) -> None:
    data = (refs / "ref_03.png").read_bytes()
    (refs / "ref_03.png").write_bytes(data[: len(data) // 3])


def too_few(refs: Path, tmp_path: Path) -> None:
    for file in sorted(refs.iterdir())[5:]:
        file.unlink()


def duplicates(refs: Path, tmp_path: Path) -> None:
    for i in range(1, 6):
        shutil.copy(refs / "ref_00.png", refs / f"ref_{i:02d}.png")


def empty(refs: Path, tmp_path: Path) -> None:
    for file in refs.iterdir():
        file.unlink()
    (refs / "notes.txt").write_text("no images here")


def symlinked_file(refs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    shutil.move(refs / "ref_00.png", outside)
    (refs / "ref_00.png").symlink_to(outside)


def symlinked_folder(refs: Path, tmp_path: Path) -> None:
    shutil.move(refs, tmp_path / "elsewhere")
    refs.symlink_to(tmp_path / "elsewhere")


def folder_named_png(refs: Path, tmp_path: Path) -> None:
    (refs / "ref_09.png").mkdir()


# (id, how to spoil the folder, field, words the one line must hold)
BAD_REFERENCES = [
    ("not-an-image", break_file, "references_dir/ref_03.png", ["does not decode as an image"]),
    ("truncated-image", truncated, "references_dir/ref_03.png", ["does not decode as an image"]),
    ("too-small", small_image, "references_dir/ref_03.png", ["is 512x700", "at least 1024 px"]),
    ("too-few", too_few, "references_dir", ["holds 5 distinct images", "9 to 50"]),
    ("near-duplicates", duplicates, "references_dir", ["holds 4 distinct images", "5 near-duplicates counted once", "9 to 50"]),
    ("no-images", empty, "references_dir", ["holds no images", ".png"]),
    ("symlinked-file-out", symlinked_file, "references_dir/ref_00.png", ["resolves to", "outside the spec's folder", "allow_references_outside"]),
    ("symlinked-folder-out", symlinked_folder, "references_dir", ["'refs' resolves to", "elsewhere", "outside the spec's folder"]),
    ("folder-named-like-an-image", folder_named_png, "references_dir/ref_09.png", ["not a regular file"]),
]


@pytest.mark.parametrize("spoil, field, words", [c[1:] for c in BAD_REFERENCES], ids=[c[0] for c in BAD_REFERENCES])
def test_bad_reference_folder_gives_one_clear_line(tmp_path, spoil, field, words):
    spec_file = library(tmp_path)
    spoil(spec_file.parent / "refs", tmp_path)
    try:
        problems = references.check(load_spec(spec_file))
    except Exception as exc:  # a folder outside is refused when the spec loads
        problems = exc.problems
    assert len(problems) == 1, [str(p) for p in problems]
    (problem,) = problems
    assert problem.where == str(spec_file) and problem.field == field
    for word in words:
        assert word in problem.message, problem.message
    result = CliRunner().invoke(app, ["validate", str(spec_file)])
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [str(problem)], result.output


def test_good_references_pass_validate(tmp_path):
    spec_file = library(tmp_path)
    assert references.check(load_spec(spec_file)) == []
    result = CliRunner().invoke(app, ["validate", str(spec_file)])
    assert result.exit_code == 0 and f"ok: {spec_file}" in result.stdout, result.output


def test_outside_is_allowed_only_when_asked(tmp_path):
    spec_file = library(tmp_path)
    symlinked_folder(spec_file.parent / "refs", tmp_path)
    assert references.check(load_spec(spec_file, allow_references_outside=True)) == []
    assert CliRunner().invoke(app, ["validate", "--allow-references-outside", str(spec_file)]).exit_code == 0
    symlinked_file(tmp_path / "elsewhere", tmp_path)
    assert references.check(load_spec(spec_file, allow_references_outside=True)) == []


def test_references_corpus_is_big_enough():
    assert len({c[0] for c in BAD_REFERENCES}) == len(BAD_REFERENCES) >= 8
