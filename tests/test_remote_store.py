"""The store by URL (fal_assets/remote_store.py): objects by content hash at a URL, each
machine reading through its own cache; working folders mirrored by pointers; and the whole
graph run as three "machines" with three working folders and no shared disk but the store."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import dagster as dg
import fsspec
import pytest

from fal_assets.errors import GenerationFailed
from fal_assets.generate import Request, Settings, generate_all
from fal_assets.remote_store import RemoteStore, WorkingCopy, is_url, open_store, suffix_of
from fal_assets.store import ContentStore

from samples import TINY

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def memory_url() -> str:
    return f"memory://bucket-{uuid.uuid4().hex[:8]}/fal-assets"


def test_a_plain_path_is_todays_local_store(tmp_path):
    store = open_store(None, tmp_path / "store")
    assert type(store) is ContentStore and store.root == (tmp_path / "store").absolute()
    assert type(open_store(str(tmp_path / "elsewhere"), tmp_path / "store")) is ContentStore
    assert not is_url(tmp_path) and is_url("s3://bucket/x") and is_url("file:///tmp/x")
    assert store.put(PNG, suffix=".png").url is None  # the journal keeps the path, as before
    assert [suffix_of(n) for n in ("a.png", "idle.cut.json", "pytorch_lora_weights.safetensors", "README")] == \
        [".png", ".cut.json", ".safetensors", ".bin"]


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_objects_live_at_the_url_and_each_machine_reads_through_its_cache(tmp_path, scheme):
    url = memory_url() if scheme == "memory" else (tmp_path / "bucket").as_uri()
    a = RemoteStore(url, tmp_path / "a")
    stored = a.put(PNG, suffix=".png")
    sha = hashlib.sha256(PNG).hexdigest()
    assert stored.url == f"{url}/objects/{sha[:2]}/{sha}.png" and a.exists(stored.url)
    assert stored.as_dict()["url"] == stored.url and stored.path == a.path_for(sha, ".png")

    b = RemoteStore(url, tmp_path / "b")  # another machine: nothing cached yet
    item = {"path": str(stored.path).replace(str(tmp_path / "a"), "/elsewhere"), "url": stored.url}
    here = b.locate(item)
    assert here == b.path_for(sha, ".png") and here.read_bytes() == PNG
    assert b.locate({"path": "/elsewhere/x.png", "url": f"{url}/objects/00/{'0' * 64}.png"}) is None

    # a damaged object is refused, never cached
    fs, base = fsspec.core.url_to_fs(url)
    other = hashlib.sha256(b"other").hexdigest()
    fs.makedirs(f"{base}/objects/{other[:2]}", exist_ok=True)
    fs.pipe_file(f"{base}/objects/{other[:2]}/{other}.png", b"not these bytes")
    with pytest.raises(OSError, match="holds bytes with sha256"):
        b.fetch(f"{url}/objects/{other[:2]}/{other}.png")
    assert not b.path_for(other, ".png").exists()


def test_working_folders_are_mirrored_by_pointers(tmp_path):
    store_url = memory_url()
    one, two = tmp_path / "one" / "output", tmp_path / "two" / "output"
    a = WorkingCopy(one, RemoteStore(store_url, tmp_path / "one" / "cache"))
    b = WorkingCopy(two, RemoteStore(store_url, tmp_path / "two" / "cache"))
    refs = one / "bolt" / "references"
    refs.mkdir(parents=True)
    (refs / "front.png").write_bytes(PNG)
    (refs / "side.png").write_bytes(PNG[::-1])
    urls = a.push([refs], exact=True)
    assert set(urls) == {"bolt/references/front.png", "bolt/references/side.png"}

    stale = two / "bolt" / "references" / "old_view.png"  # left on machine two by an older spec
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    folder = b.pull("bolt/references")
    assert sorted(p.name for p in folder.iterdir()) == ["front.png", "side.png"]
    assert (folder / "side.png").read_bytes() == PNG[::-1]

    (refs / "side.png").unlink()  # machine one drops a view: exact push drops its pointer
    a.push([refs], exact=True)
    assert sorted(p.name for p in b.pull("bolt/references").iterdir()) == ["front.png"]

    # one file, pushed and pulled alone; a path nothing was stored at stays absent
    zip_path = one / "bolt" / "dataset.zip"
    zip_path.write_bytes(b"PK-zip")
    a.push([zip_path])
    assert b.pull("bolt/dataset.zip").read_bytes() == b"PK-zip"
    assert not b.pull("bolt/lora").exists()
    # pointers are small JSON objects naming the object by hash
    fs, base = fsspec.core.url_to_fs(store_url)
    pointer = json.loads(fs.cat_file(f"{base}/index/bolt/dataset.zip"))
    assert pointer["sha256"] == hashlib.sha256(b"PK-zip").hexdigest() and pointer["url"].startswith(store_url + "/objects/")


def test_a_journal_hit_on_another_machine_downloads_from_the_url(tmp_path):
    """Machine A generates; machine B (its own cache, the same journal and store URL) gets the
    journal's cache hit and the file from the store, with nothing sent again."""
    store_url, journal_url = memory_url(), f"sqlite:///{tmp_path / 'journal.db'}"
    request = Request("fal-ai/flux-2-pro", {"prompt": "a knight in silver armor, plain white background",
                                            "image_size": {"width": 96, "height": 96}, "seed": 3})
    first = generate_all([request], Settings(store_root=tmp_path / "a" / "store", store_url=store_url, journal_url=journal_url))[0]
    assert not first.cache_hit and first.files[0]["url"].startswith(store_url + "/objects/")
    made = first.paths[0].read_bytes()
    shutil.rmtree(tmp_path / "a")  # machine A is gone with its disk
    second = generate_all([request], Settings(store_root=tmp_path / "b" / "store", store_url=store_url, journal_url=journal_url))[0]
    assert second.cache_hit and second.request_id == first.request_id
    assert second.paths[0].is_relative_to(tmp_path / "b" / "store") and second.paths[0].read_bytes() == made

    # a machine with a plain folder for a store cannot reach the file: one line says where it lives
    (outcome,) = generate_all([request], Settings(store_root=tmp_path / "c" / "store", journal_url=journal_url))
    assert isinstance(outcome, GenerationFailed) and store_url + "/objects/" in str(outcome)


def test_the_graph_runs_on_three_machines_that_share_only_the_store(tmp_path):
    """The chain on machine A, the poses and sprites on B, the sheet on C: each with its own
    working folder and cache, one journal, one store URL; C never sees a reference image."""
    from dagster_project.definitions import build_defs, graph
    from dagster_project.demo import pose_range
    from dagster_project.resources import CharacterLibrary, CutoutResource, FalResource, StoreResource
    from dagster_project.schedules import CHAIN
    from fal_assets.spec import load_spec

    store_url = (tmp_path / "bucket").as_uri()
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "bolt.yaml").write_text(TINY.format(name="bolt"))
    journal_url = f"sqlite:///{tmp_path / 'journal.db'}"

    def machine(name):
        work = tmp_path / name
        return {
            "fal": FalResource(backend="local", workdir=str(work / ".fal-assets"), journal_url=journal_url, store_url=store_url),
            "store": StoreResource(root=str(work / "output"), url=store_url, cache=str(work / ".fal-assets" / "store")),
            "cutout": CutoutResource(method="key"),
            "characters": CharacterLibrary(folder=str(folder)),
        }

    everything = graph(build_defs(str(folder)))
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.instance_for_test() as instance:
        for name, selection, options in (
            ("a", list(CHAIN), {"partition_key": "bolt"}),
            ("b", ["pose_images", "sprites"], {"tags": pose_range(load_spec(folder / "bolt.yaml"))}),
            ("c", ["sprite_sheet"], {"partition_key": "bolt"}),
        ):
            result = dg.materialize(everything, selection=selection, instance=instance, resources=machine(name),
                                    run_config=quiet, **options)
            assert result.success, name

    a, b, c = (tmp_path / n / "output" / "bolt" for n in "abc")
    assert (a / "lora" / "pytorch_lora_weights.safetensors").is_file() and not (a / "poses_raw").exists()
    assert sorted(p.name for p in (b / "poses_raw").iterdir()) == ["hop.png", "idle.png"]
    assert (b / "lora" / "pytorch_lora_weights.safetensors").is_file()  # pulled for the pose requests
    assert not (b / "references").exists() and not (c / "references").exists() and not (c / "lora").exists()
    assert (c / "sheet.png").is_file() and sorted(p.name for p in (c / "sprite_layers" / "poses").iterdir()) == ["hop.png", "idle.png", "poses.json"]
    # the sheet is in the store, by name and by content
    pointer = json.loads((tmp_path / "bucket" / "index" / "bolt" / "sheet.png").read_text())
    assert Path(pointer["url"].removeprefix("file://")).read_bytes() == (c / "sheet.png").read_bytes()
