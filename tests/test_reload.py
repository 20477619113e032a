"""A new spec reaches a running Dagster webserver through the reload the sensor asks for.

Starts the real ``dagster-webserver`` on the project's code location (specs from a
folder of the test's own), reads the partitions of ``pose_images`` through its GraphQL
API, adds a spec, calls the same ``reload_now`` the library sensor's background reload
calls, and reads them again.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dagster_project.reload import reload_now, request_reload
from samples import TINY

ROOT = Path(__file__).resolve().parents[1]
QUERY = '{ assetNodes(assetKeys: [{path: ["pose_images"]}]) { partitionKeys } }'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pose_keys(url: str) -> list[str]:
    answer = httpx.post(f"{url}/graphql", json={"query": QUERY}, timeout=60).json()
    return answer["data"]["assetNodes"][0]["partitionKeys"]


@pytest.mark.slow
def test_a_new_spec_appears_after_the_reload(tmp_path):
    folder = tmp_path / "characters"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY.format(name="tiny"))
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "FAL_ASSETS_CHARACTERS": str(folder), "FAL_ASSETS_WEBSERVER_URL": url}
    env.pop("FAL_KEY", None)
    webserver = Path(sys.executable).with_name("dagster-webserver")
    log = open(tmp_path / "webserver.log", "w")
    proc = subprocess.Popen([str(webserver), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                keys = pose_keys(url)
                break
            except (httpx.HTTPError, KeyError, TypeError, IndexError):
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "webserver.log").read_text()[-3000:]
                time.sleep(0.5)
        assert keys == ["tiny/idle", "tiny/hop"]  # only the real pairs

        (folder / "blob.yaml").write_text(TINY.format(name="blob").replace("  hop: hopping up in the air\n", ""))
        assert pose_keys(url) == keys  # loaded once: nothing changes until the reload
        assert reload_now("fal_assets", url) == "WorkspaceLocationEntry"
        assert pose_keys(url) == ["blob/idle", "tiny/idle", "tiny/hop"]
        assert "no code location" in request_reload(None)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_reload_without_a_webserver_says_what_to_do():
    found = reload_now("fal_assets", f"http://127.0.0.1:{free_port()}", timeout=5)
    assert found.startswith("could not reach the Dagster webserver") and "FAL_ASSETS_WEBSERVER_URL" in found
