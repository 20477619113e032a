"""Fixtures several test files share."""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
