"""Issue 9: what a real fal account does, reproduced by the emulator and driven through
the real fal_client (tests/fal_driver.py in a subprocess, as in test_fal_backend.py)."""

import json
import subprocess
import sys
import time

import pytest

from fal_assets.emulator import EmulatorProcess
from test_fal_backend import drive, journal_rows, start_driver

pytestmark = pytest.mark.slow

SMALL = {"width": 256, "height": 256}

SUBMIT = """
import asyncio, json, sys
import fal_client

async def main(endpoint, arguments):
    client = fal_client.AsyncClient(key="test-key")
    try:
        handle = await client.submit(endpoint, arguments)
        return {"status_code": 200, "request_id": handle.request_id}
    except fal_client.FalClientHTTPError as e:
        return {"status_code": e.status_code, "body": e.response.json()}

print(json.dumps(asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))))
"""


def run_client_script(emulator, endpoint, arguments):
    """One raw submit with the real fal_client, no validation of ours in the way."""
    proc = subprocess.run([sys.executable, "-c", SUBMIT, endpoint, json.dumps(arguments)], env=emulator.client_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_an_alias_reaches_fal_as_its_canonical_id(tmp_path):
    flash = {"endpoint": "fal-ai/flux-2-flash", "arguments": {"prompt": "a knight, plain white background", "image_size": SMALL, "seed": 3}}
    with EmulatorProcess(concurrency=2) as emulator:
        summary = drive(emulator, tmp_path, {"requests": [flash]})
        ledger = emulator.ledger()
        # The alias itself, sent verbatim by the real client, is fal's 404.
        raw = run_client_script(emulator, "fal-ai/flux-2-flash", flash["arguments"])
    assert summary["errors"] == [], summary["errors"]
    (ok,) = summary["ok"]
    assert ok["endpoint"] == "fal-ai/flux-2/flash"
    assert [row["endpoint"] for row in ledger["billed"]] == ["fal-ai/flux-2/flash"]
    assert summary["totals"]["billed_usd"] == pytest.approx(ledger["total_usd"]) and ledger["total_usd"] > 0
    with __import__("sqlite3").connect(tmp_path / "work" / "journal.db") as db:
        assert db.execute("select endpoint from fal_requests").fetchall() == [("fal-ai/flux-2/flash",)]
    assert raw["status_code"] == 404 and "not found" in json.dumps(raw["body"]).lower()


def test_a_422_at_result_time_ends_failed_settled_and_is_never_sent_again(tmp_path):
    good = {"endpoint": "fal-ai/flux-2-pro", "arguments": {"prompt": "a knight", "image_size": SMALL, "seed": 1}}
    bad = {"endpoint": "fal-ai/flux-2-pro", "arguments": {"prompt": "a knight", "image_size": SMALL, "seed": 2, "output_format": "gif"}}
    spec = {"requests": [good, bad], "loose_validation": True, "budget_per_run_usd": 5.0}
    with EmulatorProcess(concurrency=2, latency=0.1) as emulator:
        first = drive(emulator, tmp_path, spec)
        second = drive(emulator, tmp_path, spec)
        ledger = emulator.ledger()
    assert ledger["reject_at"] == "result"
    assert ledger["submitted"] == 2  # the bad one was accepted once, never resubmitted
    assert len(ledger["rejected"]) == 1 and len(ledger["billed"]) == 1
    (error,) = first["errors"]
    assert "422" in error and "arguments.output_format" in error and "\n" not in error
    states = sorted(r[0] for r in journal_rows(tmp_path))
    assert states == ["completed", "failed"]
    assert first["totals"]["pending_usd"] == 0  # nothing is left counting against the budget
    assert first["run_spent"] == pytest.approx(ledger["total_usd"])  # the run's budget is settled
    (again,) = second["errors"]
    assert "not sent" in again and second["ok"][0]["cache_hit"]


def test_submit_time_rejection_stays_available_as_an_option(tmp_path):
    bad = {"prompt": "x", "output_format": "gif"}
    with EmulatorProcess(concurrency=1, reject_at="submit") as emulator:
        raw = run_client_script(emulator, "fal-ai/flux-2-pro", bad)
        ledger = emulator.ledger()
    assert raw["status_code"] == 422 and raw["body"]["detail"][0]["loc"] == ["body", "output_format"]
    assert ledger["submitted"] == 0 and ledger["reject_at"] == "submit"


def big_lora(path, megabytes):
    """A LoRA the local renderer reads, padded to ``megabytes`` like a real FLUX.2 LoRA (~300 MB)."""
    import numpy as np

    from fal_assets.render.lora import LORA_FORMAT, PART_ORDER, _save

    tensors = {
        "palette": np.array([[0.8, 0.1, 0.5], [0.2, 0.2, 0.2]], np.float32),
        "weights": np.array([0.6, 0.4], np.float32),
        "part_colours": np.zeros((len(PART_ORDER), 3), np.float32),
        "part_mask": np.zeros(len(PART_ORDER), np.float32),
        "proportions": np.array([0.45, 0.5, 0.8], np.float32),
        "strength": np.array([0.9], np.float32),
        "padding": np.arange(megabytes * 1024 * 1024 // 4, dtype=np.float32),
    }
    path.write_bytes(_save(tensors, {"format": LORA_FORMAT, "trigger_word": "bolt_char"}))
    return path


def pose(i, lora):
    return {"endpoint": "fal-ai/flux-2/lora", "files": {"loras.0.path": str(lora)},
            "arguments": {"prompt": f"bolt_char, a robot, pose {i}", "image_size": {"width": 512, "height": 512}, "seed": i,
                          "num_inference_steps": 4, "loras": [{"path": "", "scale": 1.0}]}}


def test_a_150_mb_lora_goes_up_once_through_fals_cdn_for_8_poses_and_later_runs(tmp_path):
    lora = big_lora(tmp_path / "pytorch_lora_weights.safetensors", 150)
    size = lora.stat().st_size
    with EmulatorProcess(concurrency=4) as emulator:
        first = drive(emulator, tmp_path, {"requests": [pose(i, lora) for i in range(8)], "concurrency": 4, "call_timeout": 60})
        second = drive(emulator, tmp_path, {"requests": [pose(i, lora) for i in range(8, 10)], "call_timeout": 60})
        ledger = emulator.ledger()
    assert first["errors"] == [] and second["errors"] == [], (first["errors"], second["errors"])
    uploads = ledger["uploads"]
    (only,) = uploads["files"]  # one upload for 10 poses in two processes
    assert only["bytes"] == size and only["multipart"] and uploads["parts"] == -(-size // (10 * 1024 * 1024))
    assert uploads["tokens"] == 1  # the second process found the URL in the journal: no token, no upload
    assert len(ledger["billed"]) == 10 and ledger["submitted"] == 10
    assert first["totals"]["billed_usd"] < second["totals"]["billed_usd"] == pytest.approx(ledger["total_usd"])
    lora.unlink()  # 150 MB: do not keep it in pytest's kept tmp folders


def cheap(i):
    return {"endpoint": "fal-ai/flux-2/flash", "arguments": {"prompt": f"a knight number {i}, plain white background",
                                                             "image_size": {"width": 64, "height": 64}, "seed": i}}


def settle_doubts(tmp_path, ledger):
    """What a user does after the one-line stop: adopt an id fal lists, else resend on purpose."""
    from fal_assets.accepted import AcceptedLog
    from fal_assets.emulator import arguments_sha256
    from fal_assets.journal import Journal, State

    journal = Journal.at(tmp_path / "work" / "journal.db")
    accepted = {row["arguments_sha256"]: row["request_id"] for row in ledger["accepted"]}
    adopted = resent = 0
    try:
        for entry in journal.entries(state=State.IN_DOUBT):
            found = accepted.get(arguments_sha256(entry.arguments))
            if found:
                journal.adopt(entry.key, found)
                adopted += 1
            else:
                journal.allow_resend(entry.key)
                AcceptedLog(tmp_path / "work" / "accepted.log").resend(entry.key)
                resent += 1
    finally:
        journal.close()
    return adopted, resent


def test_kill_9_at_random_points_in_50_rounds_bills_each_request_once(tmp_path):
    import random

    rng = random.Random(9)
    hooks = ["sending", "accepted", "journaled", "external", "accepted", "external"]
    counts = {h: 0 for h in set(hooks)}
    wanted: list[dict] = []
    adopted = resent = 0
    spec = {"concurrency": 2, "call_timeout": 10, "resend_in_doubt_below_usd": 0.0}  # never resend on doubt
    with EmulatorProcess(concurrency=2, latency=0.02) as emulator:
        for round_ in range(50):
            wanted.append(cheap(round_))
            hook = rng.choice(hooks)
            counts[hook] += 1
            round_spec = {**spec, "requests": wanted[-3:]}  # the new request and two earlier ones
            if hook != "external":
                round_spec.update(kill_at=hook, kill_nth=1)
            proc = start_driver(emulator, tmp_path, round_spec, name=f"round{round_}.json")
            if hook == "external":
                time.sleep(rng.uniform(0.6, 1.2))  # around import end and the submits
                proc.kill()
            proc.communicate(timeout=60)
            a, r = settle_doubts(tmp_path, emulator.ledger())
            adopted, resent = adopted + a, resent + r
        final = drive(emulator, tmp_path, {**spec, "requests": wanted})
        for _ in range(2):  # a doubt the final run stopped on, settled, then finished
            if not final["errors"]:
                break
            a, r = settle_doubts(tmp_path, emulator.ledger())
            adopted, resent = adopted + a, resent + r
            final = drive(emulator, tmp_path, {**spec, "requests": wanted})
        ledger = emulator.ledger()
    assert final["errors"] == [] and len(final["ok"]) == 50, final["errors"]
    bodies = [row["arguments_sha256"] for row in ledger["billed"]]
    assert len(bodies) == 50 and len(set(bodies)) == 50  # every request billed exactly once
    assert ledger["submitted"] == 50  # fal accepted each exactly once
    assert final["totals"]["billed_usd"] == pytest.approx(ledger["total_usd"])
    assert counts["accepted"] > 0 and counts["sending"] > 0 and counts["external"] > 0
    print(f"\nkill rounds: {counts}; adopted by hand {adopted}, resent on purpose {resent}; "
          f"journal ${final['totals']['billed_usd']:.4f} = ledger ${ledger['total_usd']:.4f}")


def test_a_journal_lock_held_across_acceptance_bills_once(tmp_path):
    import sqlite3

    one = cheap(1)
    spec = {"requests": [one], "sqlite_busy_timeout": 0.2}
    with EmulatorProcess(concurrency=1, latency=0.05) as emulator:
        held = drive(emulator, tmp_path, {**spec, "hold_journal_lock": True})
        again = drive(emulator, tmp_path, spec)
        ledger = emulator.ledger()
    (error,) = held["errors"]
    assert "accepted but the journal could not record it" in error and "a rerun follows it" in error
    assert again["errors"] == [] and not again["ok"][0]["cache_hit"]
    assert ledger["submitted"] == 1 and len(ledger["billed"]) == 1  # followed by its id, not sent again
    assert again["ok"][0]["request_id"] == ledger["billed"][0]["request_id"]
    with sqlite3.connect(tmp_path / "work" / "journal.db") as db:
        assert db.execute("select state from fal_requests").fetchall() == [("completed",)]
