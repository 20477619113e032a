"""Fixtures several test files share."""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def preview_cache(tmp_path_factory):
    """Previews cached by content in a folder of this test session's (subprocesses too)."""
    import os

    folder = tmp_path_factory.mktemp("previews")
    before = os.environ.get("FAL_ASSETS_PREVIEW_CACHE")
    os.environ["FAL_ASSETS_PREVIEW_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("FAL_ASSETS_PREVIEW_CACHE", None)
    else:
        os.environ["FAL_ASSETS_PREVIEW_CACHE"] = before


@pytest.fixture
def library(tmp_path):
    """A copy of the example character specs in a folder of the test's own."""
    folder = tmp_path / "characters"
    folder.mkdir()
    for spec in (ROOT / "characters").glob("*.yaml"):
        shutil.copy(spec, folder)
    return folder


@pytest.fixture(autouse=True)
def no_leftover_defs_state_storage():
    """Dagster keeps the current instance's defs-state storage in a context variable; an
    instance another test left behind (closed, or collected) must not be the one that
    loading definitions reads ("undefined DagsterInstance weakref")."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield
