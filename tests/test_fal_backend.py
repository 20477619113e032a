"""The real fal path: fal_client against our emulator over HTTPS on 127.0.0.1.

Each client runs in a subprocess (tests/fal_driver.py) whose environment holds the
emulator's FAL_QUEUE_RUN_HOST and SSL_CERT_FILE, since fal_client reads the hosts when
it is imported.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fal_assets.emulator import EmulatorProcess

pytestmark = pytest.mark.slow
DRIVER = Path(__file__).with_name("fal_driver.py")
SENTINEL = "sk-sentinel-7f3a9c1e-do-not-leak:0b5e2d4c8a6f"


def requests(n, prefix="knight", size=128):
    return [
        {"endpoint": "fal-ai/flux-2-pro", "arguments": {"prompt": f"a {prefix} number {i} in silver armor, plain white background",
                                                        "image_size": {"width": size, "height": size}, "seed": i}}
        for i in range(n)
    ]


def start_driver(emulator, tmp_path, spec, name="spec.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"workdir": str(tmp_path / "work"), **spec}))
    env = {**os.environ, **emulator.env, "FAL_KEY": SENTINEL}
    return subprocess.Popen([sys.executable, str(DRIVER), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def drive(emulator, tmp_path, spec, timeout=240):
    proc = start_driver(emulator, tmp_path, spec)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    (tmp_path / "driver.log").write_text(err)
    return json.loads(out.strip().splitlines()[-1])


def journal_rows(tmp_path):
    with sqlite3.connect(tmp_path / "work" / "journal.db") as db:
        return db.execute("select state, request_id, cost_usd, cost_kind from fal_requests").fetchall()


def test_fault_storm_completes_every_image_and_bills_nothing_twice(tmp_path):
    faults = "429=0.3,503=0.05,drop=0.02,hang=0.01"
    with EmulatorProcess(concurrency=8, faults=faults, seed=11, hang_seconds=2.0) as emulator:
        summary = drive(emulator, tmp_path, {"requests": requests(200), "concurrency": 8, "call_timeout": 1.5, "retries": 12})
        ledger = emulator.ledger()
    assert summary["errors"] == [] and len(summary["ok"]) == 200
    assert summary["backend"] == "emulator"
    assert sum(ledger["faults"].values()) > 50, ledger["faults"]  # the storm really happened
    billed_ids = [b["request_id"] for b in ledger["billed"]]
    billed_bodies = [b["arguments_sha256"] for b in ledger["billed"]]
    assert len(billed_ids) == 200 and len(set(billed_bodies)) == 200  # no request paid twice
    assert ledger["submitted"] == 200
    assert summary["totals"]["billed_usd"] == pytest.approx(ledger["total_usd"], abs=1e-9)
    assert {o["request_id"] for o in summary["ok"]} == set(billed_ids)
    assert ledger["max_in_progress"] <= 8 and summary["max_in_flight"] <= 8


def test_second_run_is_free_and_sends_nothing(tmp_path):
    with EmulatorProcess(concurrency=4) as emulator:
        first = drive(emulator, tmp_path, {"requests": requests(6), "concurrency": 4})
        second = drive(emulator, tmp_path, {"requests": requests(6), "concurrency": 4})
        ledger = emulator.ledger()
    assert all(not o["cache_hit"] for o in first["ok"]) and all(o["cache_hit"] for o in second["ok"])
    assert sum(o["cost_usd"] for o in second["ok"]) == 0 and ledger["submitted"] == 6


def test_kill_9_then_rerun_submits_nothing_already_submitted(tmp_path):
    with EmulatorProcess(concurrency=2, latency=0.6) as emulator:
        proc = start_driver(emulator, tmp_path, {"requests": requests(10), "concurrency": 2})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (tmp_path / "work" / "journal.db").exists():
                try:
                    done = [r for r in journal_rows(tmp_path) if r[0] in ("submitted", "completed")]
                except sqlite3.OperationalError:
                    done = []
                if len(done) >= 4:
                    break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = emulator.ledger()["submitted"]
        submitted_then = {r[1] for r in journal_rows(tmp_path) if r[1]}
        assert 4 <= before < 10 and len(submitted_then) == before
        summary = drive(emulator, tmp_path, {"requests": requests(10), "concurrency": 2})
        ledger = emulator.ledger()
    assert summary["errors"] == [] and len(summary["ok"]) == 10
    assert ledger["submitted"] == 10  # the rerun sent only what the killed run had not
    assert submitted_then <= {o["request_id"] for o in summary["ok"]}  # resumed by request id
    assert summary["totals"]["billed_usd"] == pytest.approx(ledger["total_usd"], abs=1e-9)


def test_nsfw_output_is_quarantined(tmp_path):
    with EmulatorProcess(concurrency=2, faults="nsfw=1.0", seed=1) as emulator:
        summary = drive(emulator, tmp_path, {"requests": requests(2)})
        ledger = emulator.ledger()
    assert summary["ok"] == [] and len(summary["errors"]) == 2
    assert all("ContentFlagged" in e and "quarantined" in e for e in summary["errors"])
    states = [r[0] for r in journal_rows(tmp_path)]
    assert states == ["quarantined", "quarantined"]
    assert summary["totals"]["billed_usd"] == pytest.approx(ledger["total_usd"])  # fal bills flagged output too
    assert [p for p in (tmp_path / "work" / "store" / "quarantine").rglob("*") if p.suffix == ".jpg"]  # flux-2-pro sends jpeg by default


def test_422_is_reported_field_by_field(tmp_path):
    bad = {"endpoint": "fal-ai/flux-2-pro", "arguments": {"prompt": "x", "guidance_scale": 3.5, "output_format": "gif"}}
    with EmulatorProcess(concurrency=2, reject_at="submit") as emulator:
        summary = drive(emulator, tmp_path, {"raw_submit": bad})
        ledger = emulator.ledger()
    lines = summary["error_lines"]
    assert any(line.startswith("fal-ai/flux-2-pro: arguments.guidance_scale") for line in lines), lines
    assert any(line.startswith("fal-ai/flux-2-pro: arguments.output_format") for line in lines), lines
    assert ledger["submitted"] == 0 and ledger["total_usd"] == 0


def test_the_key_never_reaches_journal_files_or_logs(tmp_path):
    with EmulatorProcess(concurrency=2) as emulator:
        drive(emulator, tmp_path, {"requests": requests(3)})
        emulator_log = emulator.log_text()
    assert SENTINEL not in emulator_log
    halves = [SENTINEL[: len(SENTINEL) // 2], SENTINEL[len(SENTINEL) // 2 :]]
    for path in [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "spec.json"]:
        data = path.read_bytes()
        assert SENTINEL.encode() not in data, path
        assert not any(h.encode() in data for h in halves), path


def test_requests_are_followed_by_fals_status_stream_not_by_polling(tmp_path):
    """fal pushes status changes over server-sent events (.../status/stream): one stream per
    request and no status GETs, so 200 requests in flight cost no polling CPU."""
    with EmulatorProcess(concurrency=2, latency=0.3) as emulator:
        summary = drive(emulator, tmp_path, {"requests": requests(6), "concurrency": 6})
        ledger = emulator.ledger()
    assert summary["errors"] == [] and len(summary["ok"]) == 6
    assert (ledger["status_streams"], ledger["status_gets"], ledger["submitted"]) == (6, 0, 6)
    log = (tmp_path / "driver.log").read_text()
    assert "in queue at position" in log  # queued requests' positions still reach the user


@pytest.mark.parametrize("code", [404, 405, 500])
def test_a_status_stream_that_answers_an_error_falls_back_to_polling_not_to_gone(code, monkeypatch):
    """A stream route that fails says nothing about the request: the status GET has the last
    word (only its 404 means fal forgot the request), so the caller polls instead."""
    import asyncio

    import httpx

    from fal_assets.backends.base import TransientError
    from fal_assets.backends.fal import FalBackend

    monkeypatch.setenv("FAL_KEY", SENTINEL)
    backend = FalBackend()
    backend._streams = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(code, json={"detail": "no"})))

    async def follow():
        try:
            return [status async for status in backend.watch("fal-ai/flux-2-pro", "req-1")]
        finally:
            await backend.aclose()

    with pytest.raises(TransientError, match=f"answered HTTP {code}"):
        asyncio.run(follow())
