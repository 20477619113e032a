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


@pytest.fixture(scope="session", autouse=True)
def no_dead_defs_state_storage():
    """Dagster keeps the current instance's defs-state storage in a context variable, and
    that storage holds its instance by weak reference. Under pytest an instance can be
    collected while its storage is still the current one (fixtures enter and leave
    instances out of order), and loading definitions then fails with "Attempted to
    resolve undefined DagsterInstance weakref" at random, depending on when the garbage
    collector runs. Where the storage's instance is gone, there is no storage."""
    from dagster._core.storage.defs_state.base import DefsStateStorage

    original = DefsStateStorage.__dict__["get"]

    def get(cls):
        storage = original.__func__(cls)
        ref = getattr(storage, "_instance_weakref", None)
        return None if ref is not None and ref() is None else storage

    DefsStateStorage.get = classmethod(get)
    yield
    DefsStateStorage.get = original


@pytest.fixture(autouse=True)
def no_leftover_defs_state_storage():
    """An instance another test left current must not be the one this test's loads read."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield
