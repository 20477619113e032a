"""Finished files copied to object storage by URL (fsspec's memory filesystem here)."""

import fsspec
import pytest

from dagster_project.resources import StoreResource
from fal_assets.errors import InvalidInput
from fal_assets.publish import publish


def test_publish_keeps_the_layout_and_the_bytes(tmp_path):
    root = tmp_path / "output"
    sheet = root / "glitch" / "sheet.png"
    pose = root / "glitch" / "sprite_layers" / "poses" / "idle.png"
    for path, data in ((sheet, b"png-bytes"), (pose, b"pose-bytes")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    urls = publish([sheet, pose], root, "memory://bucket/fal-assets")
    assert urls == ["memory://bucket/fal-assets/glitch/sheet.png", "memory://bucket/fal-assets/glitch/sprite_layers/poses/idle.png"]
    fs = fsspec.filesystem("memory")
    assert fs.cat_file("/bucket/fal-assets/glitch/sprite_layers/poses/idle.png") == b"pose-bytes"


def test_store_resource_publishes_only_with_a_url(tmp_path):
    path = tmp_path / "out" / "bolt" / "sheet.json"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    assert StoreResource(root=str(tmp_path / "out")).publish(path) == {}
    published = StoreResource(root=str(tmp_path / "out"), publish_url="memory://team/sprites").publish(path)
    assert published["published"].value == ["memory://team/sprites/bolt/sheet.json"]


def test_unknown_scheme_is_one_clear_line(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"x")
    with pytest.raises(InvalidInput) as caught:
        publish([path], tmp_path, "nosuchfs://bucket")
    assert caught.value.lines()[0].startswith("store: publish_url: 'nosuchfs://bucket' cannot be opened")
