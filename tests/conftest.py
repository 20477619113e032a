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
