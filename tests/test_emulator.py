"""The fal queue emulator, driven through the real fal_client in a subprocess.

fal_client reads FAL_RUN_HOST / FAL_QUEUE_RUN_HOST at import time, so every client
runs in a fresh ``python -c`` whose environment points at the emulator.
"""

from __future__ import annotations

import base64
import io
import json
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from PIL import Image

from fal_assets.emulator import EmulatorProcess, arguments_sha256, parse_faults, run_emulator
from fal_assets.emulator.tls import client_context
from fal_assets.emulator.work import field_loc
from fal_assets.errors import InvalidInput

PRO = "fal-ai/flux-2-pro"
LORA = "fal-ai/flux-2/lora"
SMALL = {"width": 256, "height": 256}
PNG = "png"

PRELUDE = """
import asyncio, json, os
import fal_client
ARGS = json.loads(os.environ["CLIENT_ARGS"])
client = fal_client.AsyncClient(key="test-key")

def st(s):
    if isinstance(s, fal_client.Queued):
        return {"status": "IN_QUEUE", "position": s.position}
    if isinstance(s, fal_client.InProgress):
        return {"status": "IN_PROGRESS"}
    return {"status": "COMPLETED", "error": s.error, "error_type": s.error_type, "metrics": s.metrics}

def http_error(e):
    return {"status_code": e.status_code, "body": e.response.json(), "error_type": e.error_type}
"""


def run_client(emu: EmulatorProcess, body: str, timeout: float = 60, **args: Any) -> Any:
    """Run ``body`` (the inside of ``async def main()``) with the real fal_client; its return value."""
    script = PRELUDE + "\nasync def main():\n" + textwrap.indent(textwrap.dedent(body), "    ")
    script += "\nprint(json.dumps(asyncio.run(main())))\n"
    env = emu.client_env()
    env["CLIENT_ARGS"] = json.dumps(args)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"client failed:\n{proc.stderr}\nemulator log:\n{emu.log_text()}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def download(emu: EmulatorProcess, url: str) -> httpx.Response:
    response = httpx.get(url, verify=client_context(emu.env["SSL_CERT_FILE"]), trust_env=False, timeout=10)
    response.raise_for_status()
    return response


def expected_cost(endpoint: str, arguments: dict, input_sizes=None) -> float:
    from fal_assets.pricing import estimate
    from fal_assets.validation import validate

    try:
        return estimate(endpoint, validate(endpoint, arguments), input_sizes=input_sizes, count=1).cost_usd
    except InvalidInput:
        return 0.0


@pytest.fixture(scope="module")
def emu():
    """One queue slot and a visible latency, so positions and cancels can be observed."""
    emulator = EmulatorProcess(concurrency=1, latency=0.5, seed=11, hang_seconds=30)
    with emulator:
        yield emulator
        # Stops cleanly (exit 0) on SIGTERM, even after hung and dropped requests.
        assert emulator.stop() == 0, emulator.log_text()


@pytest.fixture
def fresh(emu):
    emu.reset(faults="")
    return emu


# --- options -------------------------------------------------------------------------------
def test_parse_faults_accepts_kinds_and_probabilities():
    assert parse_faults("429=0.3, 503=0.05,drop=0.02,hang=0.01,nsfw=1") == {
        "429": 0.3, "503": 0.05, "drop": 0.02, "hang": 0.01, "nsfw": 1.0,
    }
    assert parse_faults({"drop": 0.5}) == {"drop": 0.5}
    assert parse_faults("") == {} and parse_faults(None) == {}


@pytest.mark.parametrize(
    "text, says",
    [
        ("500=0.1", "unknown fault '500'"),
        ("429", "has no '='"),
        ("429=lots", "is not a number"),
        ("drop=1.5", "outside 0..1"),
        ("hang=-0.1", "outside 0..1"),
        ("nsfw=nan", "outside 0..1"),
        ("429=0.1,429=0.2", "given twice"),
    ],
)
def test_parse_faults_rejects_with_one_clear_line(text, says):
    with pytest.raises(InvalidInput) as caught:
        parse_faults(text)
    (line,) = caught.value.lines()
    assert line.startswith("emulate: --faults: ") and says in line
    assert "allowed:" in line and "429, 503, drop, hang, nsfw" in line


def test_run_emulator_rejects_bad_options_before_listening():
    with pytest.raises(InvalidInput) as caught:
        run_emulator(port=70000, concurrency=0, latency=-1)
    fields = [p.field for p in caught.value.problems]
    assert fields == ["--port", "--concurrency", "--latency"]


def test_module_entry_point_reports_bad_options_and_exits_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, says in [
            (["--port", "0", "--faults", "429=2"], "emulate: --faults: 429=2 is outside 0..1; allowed:"),
            (["--port", str(port)], f"emulate: --port: cannot listen on 127.0.0.1:{port}:"),
        ]:
            proc = subprocess.run(
                [sys.executable, "-m", "fal_assets.emulator", *args], capture_output=True, text=True, timeout=30
            )
            assert proc.returncode == 2 and proc.stdout == ""
            (line,) = proc.stderr.strip().splitlines()
            assert line.startswith(says)


def test_field_paths_become_fastapi_locs():
    assert field_loc("arguments.image_size.width") == ["body", "image_size", "width"]
    assert field_loc("arguments.loras[1].path") == ["body", "loras", 1, "path"]
    assert field_loc("endpoint") == ["body"]


# --- the queue through the real client --------------------------------------------------------
def test_round_trip_positions_shapes_media_and_ledger(fresh):
    requests = [
        (PRO, {"prompt": "a red fox", "image_size": SMALL, "seed": 5, "output_format": PNG}),
        (PRO, {"prompt": "a blue fox", "image_size": SMALL, "output_format": PNG}),
        (LORA, {"prompt": "a green fox", "image_size": {"width": 512, "height": 512}}),
    ]
    out = run_client(
        fresh,
        """
        handles = [await client.submit(e, a) for e, a in ARGS["requests"]]
        first = [st(await h.status()) for h in handles]
        seen = []
        for h in handles:
            async for event in h.iter_events(with_logs=True, interval=0.05):
                seen.append(st(event))
        results = [await h.get() for h in handles]
        # A handle rebuilt from the id drops the sub-path: fal-ai/flux-2/requests/<id>.
        rebuilt = await client.get_handle(ARGS["requests"][2][0], handles[2].request_id)
        return {
            "ids": [h.request_id for h in handles],
            "urls": [h.status_url for h in handles],
            "rebuilt_url": rebuilt.status_url,
            "rebuilt_status": st(await rebuilt.status(with_logs=True)),
            "rebuilt_result": await rebuilt.get(),
            "first": first,
            "seen": seen,
            "results": results,
        }
        """,
        requests=requests,
    )
    ids = out["ids"]
    assert len(set(ids)) == 3
    # One slot: the first job runs, the others wait at 0-indexed positions 0 and 1.
    assert out["first"][0]["status"] in ("IN_QUEUE", "IN_PROGRESS")
    assert out["first"][1:] == [{"status": "IN_QUEUE", "position": 0}, {"status": "IN_QUEUE", "position": 1}]
    assert {"status": "IN_PROGRESS"} in out["seen"]
    completed = [s for s in out["seen"] if s["status"] == "COMPLETED"]
    assert len(completed) == 3 and all(s["error"] is None and s["metrics"]["inference_time"] >= 0 for s in completed)

    host = fresh.env["FAL_QUEUE_RUN_HOST"]
    assert out["urls"][2] == f"https://{host}/fal-ai/flux-2/requests/{ids[2]}/status"
    assert out["rebuilt_url"] == out["urls"][2]
    assert out["rebuilt_status"]["status"] == "COMPLETED"
    assert out["rebuilt_result"] == out["results"][2]

    for (endpoint, arguments), result in zip(requests, out["results"]):
        size = arguments["image_size"]
        (image,) = result["images"]
        assert {k: image[k] for k in ("width", "height", "content_type")} == {**size, "content_type": "image/png"}
        assert image["url"].startswith(f"https://{host}/_media/")
        assert result["prompt"] == arguments["prompt"]
        # As on fal: flux-2-pro's output has no has_nsfw_concepts; flux-2/lora's has.
        assert result.get("has_nsfw_concepts") == (None if endpoint == PRO else [False])
        assert isinstance(result["seed"], int) and result["timings"]["inference"] >= 0
        media = download(fresh, image["url"])
        assert media.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(media.content)) as decoded:
            assert decoded.format == "PNG" and decoded.size == (size["width"], size["height"])
    assert out["results"][0]["seed"] == 5  # a given seed is kept; the others got one picked

    # The long form (with the endpoint sub-path) answers too.
    with fresh.http(headers={"Authorization": "Key test"}) as http:
        long_form = http.get(f"/fal-ai/flux-2/lora/requests/{ids[2]}/status", params={"logs": 1})
    assert long_form.status_code == 200 and long_form.json()["status"] == "COMPLETED"
    assert long_form.headers["x-fal-request-id"] == ids[2]
    assert [entry["message"] for entry in long_form.json()["logs"]][-1] == "Request completed"

    ledger = fresh.ledger()
    assert ledger["submitted"] == ledger["submit_attempts"] == 3
    assert ledger["max_in_progress"] == 1
    assert [row["request_id"] for row in ledger["billed"]] == ids
    for row, (endpoint, arguments) in zip(ledger["billed"], requests):
        assert row["endpoint"] == endpoint
        assert row["arguments_sha256"] == arguments_sha256(arguments)
        assert row["cost_usd"] == pytest.approx(expected_cost(endpoint, arguments))
    assert ledger["total_usd"] == pytest.approx(sum(row["cost_usd"] for row in ledger["billed"]))
    assert ledger["total_usd"] > 0


def test_invalid_request_is_accepted_then_a_422_with_field_locations_at_result_time(fresh):
    out = run_client(
        fresh,
        """
        handle = await client.submit(ARGS["endpoint"], ARGS["arguments"])
        async for _ in handle.iter_events(interval=0.05):
            pass
        done = st(await handle.status())
        try:
            await handle.get()
        except fal_client.FalClientHTTPError as e:
            return {"status": done, **http_error(e)}
        return None
        """,
        endpoint=LORA,
        arguments={"prompt": "x", "image_size": {"width": 100, "height": 512}},
    )
    assert out["status"]["status"] == "COMPLETED" and out["status"]["error"] is None  # as fal: only the result says
    assert out["status_code"] == 422
    (item,) = out["body"]["detail"]
    assert item["loc"] == ["body", "image_size", "width"] and item["type"] == "value_error"
    assert "512" in item["msg"]
    ledger = fresh.ledger()
    assert (ledger["submitted"], ledger["submit_attempts"], ledger["billed"]) == (1, 1, [])
    assert len(ledger["rejected"]) == 1


def test_cancel_while_queued_is_not_billed(fresh):
    out = run_client(
        fresh,
        """
        a = await client.submit(ARGS["endpoint"], ARGS["arguments"])
        b = await client.submit(ARGS["endpoint"], ARGS["arguments"])
        queued = st(await b.status())
        await b.cancel()
        running = st(await a.status())
        await a.cancel()  # in progress: the runner is asked, the emulated app finishes anyway
        after = st(await b.status())
        try:
            await b.get()
            b_result = None
        except fal_client.FalClientHTTPError as e:
            b_result = http_error(e)
        await a.get()
        try:
            await a.cancel()
            late = None
        except fal_client.FalClientHTTPError as e:
            late = http_error(e)
        return {"a": a.request_id, "queued": queued, "running": running, "after": after, "b_result": b_result,
                "late": late}
        """,
        endpoint=PRO,
        arguments={"prompt": "cancel me", "image_size": SMALL},
    )
    assert out["queued"] == {"status": "IN_QUEUE", "position": 0}
    assert out["running"] == {"status": "IN_PROGRESS"}
    assert out["after"]["status"] == "COMPLETED" and out["after"]["error_type"] == "request_cancelled"
    assert out["b_result"]["status_code"] == 400
    assert out["late"] == {"status_code": 400, "body": {"status": "ALREADY_COMPLETED"}, "error_type": None}
    ledger = fresh.ledger()
    assert [row["request_id"] for row in ledger["billed"]] == [out["a"]]
    assert (ledger["submitted"], ledger["cancelled"]) == (2, 1)


def test_auth_and_unknown_ids(fresh):
    with fresh.http(timeout=10) as http:
        assert http.post(f"/{PRO}", json={"prompt": "x"}).status_code == 401
        assert http.get(f"/{PRO}/requests/nope/status").status_code == 401
        keyed = {"Authorization": "Key whatever"}
        missing = http.get(f"/{PRO}/requests/nope/status", headers=keyed)
        assert missing.status_code == 404 and "x-fal-request-id" in missing.headers
        assert http.put(f"/{PRO}/requests/nope/cancel", headers=keyed).json()["status"] == "NOT_FOUND"
    ledger = fresh.ledger()
    assert (ledger["submitted"], ledger["submit_attempts"]) == (0, 1)
    assert "whatever" not in fresh.log_text()


def test_status_stream_sends_each_change_then_closes_after_completed(fresh):
    """fal's GET .../status/stream: server-sent events, a data: line per change, closed after COMPLETED."""
    keyed = {"Authorization": "Key whatever"}
    with fresh.http(timeout=30) as http:
        first = http.post(f"/{PRO}", json={"prompt": "first", "image_size": SMALL}, headers=keyed).json()
        second = http.post(f"/{PRO}", json={"prompt": "second", "image_size": SMALL}, headers=keyed).json()
        with http.stream("GET", second["status_url"] + "/stream", params={"logs": 1}, headers=keyed) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
        missing = http.get(f"/{PRO}/requests/nope/status/stream", headers=keyed)
        unkeyed = http.get(second["status_url"] + "/stream")
    states = [event["status"] for event in events]
    assert states == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"], states  # one slot: it waits behind the first
    assert events[0]["queue_position"] == 0 and events[0]["request_id"] == second["request_id"]
    assert [line["message"] for line in events[-1]["logs"]][-1] == "Request completed"
    assert missing.status_code == 404 and unkeyed.status_code == 401
    assert fresh.ledger()["status_streams"] == 1 and first["request_id"] != second["request_id"]


def test_webhook_receives_the_result(fresh):
    received: queue.Queue[dict] = queue.Queue()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        request_id = run_client(
            fresh,
            """
            handle = await client.submit(ARGS["endpoint"], ARGS["arguments"], webhook_url=ARGS["hook"])
            await handle.get()
            return handle.request_id
            """,
            endpoint=PRO,
            arguments={"prompt": "hooked", "image_size": SMALL},
            hook=f"http://127.0.0.1:{server.server_port}/done",
        )
        payload = received.get(timeout=10)
    finally:
        server.shutdown()
    assert payload["request_id"] == request_id and payload["status"] == "OK"
    assert payload["payload"]["prompt"] == "hooked" and len(payload["payload"]["images"]) == 1


def test_nsfw_fault_completes_billed_with_a_black_image(fresh):
    fresh.reset(faults="nsfw=1.0", seed=1)
    out = run_client(
        fresh,
        "return await client.subscribe(ARGS['endpoint'], ARGS['arguments'])",
        endpoint=PRO,
        arguments={"prompt": "flagged", "image_size": SMALL},
    )
    assert out["has_nsfw_concepts"] == [True]
    with Image.open(io.BytesIO(download(fresh, out["images"][0]["url"]).content)) as image:
        assert image.size == (256, 256)
        assert all(high == 0 for _, high in image.convert("RGB").getextrema())
    ledger = fresh.ledger()
    assert len(ledger["billed"]) == 1 and ledger["faults"] == {"nsfw": 1}


def test_rate_limits_and_drops_are_retried_by_the_client_and_never_billed(fresh):
    fresh.reset(faults="429=0.3,drop=0.15", seed=3)
    out = run_client(
        fresh,
        """
        handles = [await client.submit(ARGS["endpoint"], dict(ARGS["arguments"], prompt=f"p{i}")) for i in range(4)]
        return [len((await h.get())["images"]) for h in handles]
        """,
        endpoint=PRO,
        arguments={"image_size": SMALL},
    )
    assert out == [1, 1, 1, 1]
    ledger = fresh.ledger()
    assert ledger["submitted"] == 4 and len(ledger["billed"]) == 4
    faults = ledger["faults"]
    assert faults.get("429", 0) + faults.get("drop", 0) > 0
    assert ledger["submit_attempts"] > 4  # faulted submits were retried, and not enqueued


def test_503_reaches_the_caller_and_enqueues_nothing(fresh):
    fresh.reset(faults="503=1.0")
    out = run_client(
        fresh,
        """
        try:
            await client.submit(ARGS["endpoint"], ARGS["arguments"])
        except fal_client.FalClientHTTPError as e:
            return dict(http_error(e), header=e.response_headers.get("x-fal-error-type"))
        """,
        endpoint=PRO,
        arguments={"prompt": "x", "image_size": SMALL},
    )
    assert out["status_code"] == 503
    assert out["error_type"] == out["header"] == out["body"]["error_type"] == "runner_scheduling_failure"
    ledger = fresh.ledger()
    assert (ledger["submitted"], ledger["submit_attempts"], ledger["billed"]) == (0, 1, [])


def test_drop_aborts_and_hang_holds_the_connection(fresh):
    keyed = {"Authorization": "Key test"}
    fresh.reset(faults="drop=1.0")
    with fresh.http(timeout=10) as http, pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post(f"/{PRO}", json={"prompt": "x", "image_size": SMALL}, headers=keyed)
    fresh.reset(faults="hang=1.0")
    with fresh.http(timeout=0.5) as http, pytest.raises(httpx.ReadTimeout):
        http.post(f"/{PRO}", json={"prompt": "x", "image_size": SMALL}, headers=keyed)
    ledger = fresh.ledger()
    assert (ledger["submitted"], ledger["faults"]) == (0, {"hang": 1})


def test_inputs_resolve_from_data_uris_media_urls_and_files(fresh, tmp_path):
    made = run_client(
        fresh,
        "return await client.subscribe(ARGS['endpoint'], ARGS['arguments'])",
        endpoint=PRO,
        arguments={"prompt": "base", "image_size": SMALL, "output_format": PNG},
    )
    rendered = download(fresh, made["images"][0]["url"]).content
    local = tmp_path / "ref.png"
    Image.open(io.BytesIO(rendered)).resize((300, 200)).save(local)
    edit = "fal-ai/flux-2/flash/edit"
    data_uri = "data:image/png;base64," + base64.b64encode(rendered).decode()
    inputs = [made["images"][0]["url"], data_uri, str(local), local.as_uri()]
    arguments = {"prompt": "edit", "image_urls": inputs, "image_size": SMALL}
    broken = {"prompt": "edit", "image_urls": [inputs[0], str(tmp_path / "missing.png")], "image_size": SMALL}
    out = run_client(
        fresh,
        """
        ok = await client.subscribe(ARGS["endpoint"], ARGS["arguments"])
        try:
            await client.subscribe(ARGS["endpoint"], ARGS["broken"])
            failed = None
        except fal_client.FalClientHTTPError as e:
            failed = http_error(e)
        return {"ok": ok, "failed": failed}
        """,
        endpoint=edit,
        arguments=arguments,
        broken=broken,
    )
    assert len(out["ok"]["images"]) >= 1
    assert out["failed"]["status_code"] == 422
    assert out["failed"]["body"]["detail"][0]["loc"] == ["body", "image_urls", 1]
    ledger = fresh.ledger()
    assert len(ledger["billed"]) == 2  # the base image and the edit; the failed one is free
    sizes = [(256, 256), (256, 256), (300, 200), (300, 200)]
    assert ledger["billed"][1]["cost_usd"] == pytest.approx(expected_cost(edit, arguments, sizes))


@pytest.mark.slow
def test_concurrency_is_never_exceeded():
    with EmulatorProcess(concurrency=2, latency=0.3) as emu:
        out = run_client(
            emu,
            """
            jobs = [client.subscribe(ARGS["endpoint"], dict(ARGS["arguments"], prompt=f"p{i}")) for i in range(6)]
            return [r["images"][0]["width"] for r in await asyncio.gather(*jobs)]
            """,
            endpoint=PRO,
            arguments={"image_size": SMALL},
        )
        assert out == [256] * 6
        ledger = emu.ledger()
        assert ledger["max_in_progress"] == 2  # both slots were used, never a third
        assert len(ledger["billed"]) == 6


@pytest.mark.slow
def test_trainer_output_feeds_the_lora_endpoint(fresh):
    from fal_assets.render import render_request

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(3):
            arguments = {"prompt": "zxq character", "image_size": SMALL, "seed": index, "output_format": PNG}
            ((picture, _),) = render_request(PRO, arguments)
            archive.writestr(f"img{index}.png", picture)
            archive.writestr(f"img{index}.txt", f"zxq character, view {index}")
    dataset = "data:application/zip;base64," + base64.b64encode(buffer.getvalue()).decode()
    out = run_client(
        fresh,
        """
        trained = await client.subscribe("fal-ai/flux-2-trainer", {"image_data_url": ARGS["dataset"], "steps": 10})
        lora = trained["diffusers_lora_file"]["url"]
        styled = await client.subscribe(ARGS["lora"], {
            "prompt": "zxq character", "image_size": {"width": 512, "height": 512},
            "loras": [{"path": lora, "scale": 0.8}],
        })
        return {"trained": trained, "styled": styled}
        """,
        timeout=120,
        dataset=dataset,
        lora=LORA,
    )
    weights = out["trained"]["diffusers_lora_file"]
    assert weights["file_name"].endswith(".safetensors")
    assert len(download(fresh, weights["url"]).content) == weights["file_size"]
    config = download(fresh, out["trained"]["config_file"]["url"])
    assert config.headers["content-type"] == "application/json" and isinstance(config.json(), dict)
    assert out["styled"]["images"][0]["width"] == 512
    ledger = fresh.ledger()
    assert [row["endpoint"] for row in ledger["billed"]] == ["fal-ai/flux-2-trainer", LORA]
    expected = expected_cost("fal-ai/flux-2-trainer", {"image_data_url": dataset, "steps": 10})
    assert ledger["billed"][0]["cost_usd"] == pytest.approx(expected)


def test_a_broken_render_fails_its_job_and_the_slot_keeps_serving():
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from fal_assets.emulator.server import Emulator
    from fal_assets.jobs import run_job
    from fal_assets.pricing import estimate

    def renderer(endpoint, arguments, fetch):
        if arguments["prompt"] == "boom":
            raise RuntimeError("renderer bug")
        return run_job(endpoint, arguments, fetch)

    def pricing(endpoint, arguments, **options):
        if arguments["prompt"] == "price bug":
            raise KeyError("price table")
        return estimate(endpoint, arguments, **options)

    async def scenario():
        emulator = Emulator(concurrency=1, run_job=renderer, estimate=pricing)
        async with TestClient(TestServer(emulator.app())) as http:
            keyed = {"Authorization": "Key k"}
            ids = []
            for prompt in ("boom", "price bug", "fine"):
                submitted = await http.post(f"/{PRO}", json={"prompt": prompt, "image_size": SMALL}, headers=keyed)
                ids.append((await submitted.json())["request_id"])
            statuses = []
            for request_id in ids:
                for _ in range(200):
                    status = await (await http.get(f"/{PRO}/requests/{request_id}/status", headers=keyed)).json()
                    if status["status"] == "COMPLETED":
                        break
                    await asyncio.sleep(0.02)
                statuses.append(status)
            answers = [await http.get(f"/{PRO}/requests/{request_id}", headers=keyed) for request_id in ids]
            bodies = [await answer.json() for answer in answers]
            return statuses, [a.status for a in answers], bodies, emulator.ledger_json()

    statuses, codes, bodies, ledger = asyncio.run(scenario())
    assert [s["status"] for s in statuses] == ["COMPLETED"] * 3
    assert [s.get("error_type") for s in statuses] == ["internal_error", "internal_error", None]
    assert codes == [500, 500, 200]
    assert bodies[0]["detail"] == "RuntimeError: renderer bug"
    assert bodies[1]["detail"] == "KeyError: 'price table'"
    assert len(bodies[2]["images"]) == 1
    assert [row["request_id"] for row in ledger["billed"]] == [statuses[2]["request_id"]]
