"""The CLI contract other tools rely on: output shapes, exit codes, one line per problem."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fal_assets.cli import app, parse_value

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_estimate_json_has_cost():
    result = invoke("estimate", "fal-ai/flux-2-pro", "--arg", "prompt=a knight", "--arg", "image_size=1920x1080", "--count", "6", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["cost_usd"] == pytest.approx(6 * (0.03 + 0.015))


def test_estimate_edit_counts_input_megapixels():
    result = invoke(
        "estimate", "fal-ai/flux-2/flash/edit", "--arg", "prompt=make it blue", "--arg", 'image_urls=["https://x/a.png"]',
        "--arg", "image_size=1024x1024", "--input-size", "512x512", "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cost_usd"] == pytest.approx(0.01)


def test_estimate_invalid_exits_2_one_line_per_problem():
    result = invoke("estimate", "fal-ai/flux-2-pro", "--arg", "prompt=x", "--arg", "guidance_scale=3.5", "--arg", "num_inference_steps=30")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("fal-ai/flux-2-pro: arguments.") for line in lines)
    assert "Traceback" not in result.output


def test_estimate_bad_input_size_and_arg_syntax():
    assert invoke("estimate", "fal-ai/flux-2-pro", "--arg", "prompt=x", "--input-size", "big").exit_code == 2
    result = invoke("estimate", "fal-ai/flux-2-pro", "--arg", "promptx")
    assert result.exit_code == 2 and "KEY=VALUE" in result.stderr


def test_unknown_endpoint_exits_2():
    result = invoke("estimate", "fal-ai/flux-3-ultra", "--arg", "prompt=x")
    assert result.exit_code == 2 and "flux-3-ultra" in result.stderr


def test_parse_value_json_then_string_then_size():
    assert parse_value("seed", "42") == 42
    assert parse_value("prompt", "a knight") == "a knight"
    assert parse_value("loras", '[{"path":"u","scale":1}]') == [{"path": "u", "scale": 1}]
    assert parse_value("image_size", "768x1024") == {"width": 768, "height": 1024}
    assert parse_value("image_size", "portrait_4_3") == "portrait_4_3"


def test_validate_examples_pass():
    result = invoke("validate", *(str(p) for p in sorted((ROOT / "characters").glob("*.yaml"))))
    assert result.exit_code == 0, result.output


def test_validate_reports_every_file_and_field(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: Bad Name\ntrigger_word: glitch_char\ndescription: d\nstyle: s\nposes: {idle: standing}\n")
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"endpoint": "fal-ai/flux/dev", "arguments": {"prompt": "x", "lora_config": {"path": "u"}}}))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = invoke("validate", str(spec), str(request), str(broken))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"{spec}: name:") for line in lines)
    assert any(line.startswith(f"{request}: ") and "fal-ai/flux-2/lora" in line for line in lines)
    assert any(line.startswith(f"{broken}: ") and "JSON" in line for line in lines)


def test_validate_checks_profiles_against_the_pose_endpoint(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: tiny\ntrigger_word: tiny_char\ndescription: a small robot\nstyle: flat vector\n"
        "poses: {idle: standing}\nprofiles: {draft: {image_size: {width: 256, height: 256}}}\n"
    )
    result = invoke("validate", str(spec))
    assert result.exit_code == 2
    assert "profiles.draft" in result.stderr and "512" in result.stderr


def test_prompt_is_exact_and_trigger_first():
    result = invoke("prompt", str(ROOT / "characters" / "glitch.yaml"), "run")
    assert result.exit_code == 0
    assert result.stdout.startswith("glitch_char, ") and "#FF1493" in result.stdout


def test_prompt_unknown_pose_exits_2():
    result = invoke("prompt", str(ROOT / "characters" / "glitch.yaml"), "moonwalk")
    assert result.exit_code == 2 and "moonwalk" in result.stderr


def test_console_script_exit_code_without_traceback():
    exe = Path(sys.executable).with_name("fal-assets")
    proc = subprocess.run([str(exe), "estimate", "fal-ai/flux-2-pro", "--arg", "prompt=x", "--arg", "output_format=gif"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("fal-ai/flux-2-pro: arguments.output_format")


def test_generate_twice_costs_nothing_the_second_time(tmp_path, monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.delenv("FAL_AI_API_KEY", raising=False)
    args = ["generate", "fal-ai/flux-2-pro", "--arg", "prompt=a knight in silver armor, plain white background",
            "--arg", "image_size=256x256", "--out", str(tmp_path / "work"), "--json"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    one = json.loads(first.stdout)
    assert one["backend"] == "local" and one["cache_hit"] is False and one["cost_usd"] == 0
    assert one["estimated_usd"] == pytest.approx(0.03) and isinstance(one["seed"], int) and one["request_id"]
    assert all(Path(p).is_file() for p in one["files"])
    second = json.loads(invoke(*args).stdout)
    assert second["cache_hit"] is True and second["cost_usd"] == 0
    assert second["files"] == one["files"] and second["seed"] == one["seed"] and second["request_id"] == one["request_id"]


def test_generate_invalid_request_sends_nothing(tmp_path):
    result = invoke("generate", "fal-ai/flux-2/lora", "--arg", "prompt=x", "--arg", "image_size=256x256",
                    "--backend", "local", "--out", str(tmp_path / "work"))
    assert result.exit_code == 2 and "512" in result.stderr
    db = tmp_path / "work" / "journal.db"
    if db.exists():
        from fal_assets.journal import Journal

        assert Journal.at(db).entries() == []  # never claimed, never sent


def test_emulate_prints_its_environment_then_ready():
    exe = Path(sys.executable).with_name("fal-assets")
    proc = subprocess.Popen([str(exe), "emulate", "--port", "0", "--latency", "0"], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while True:
            line = proc.stdout.readline().strip()
            lines.append(line)
            if line == "ready" or not line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    names = {line.split("=", 1)[0] for line in lines if "=" in line}
    assert {"FAL_RUN_HOST", "FAL_QUEUE_RUN_HOST", "SSL_CERT_FILE"} <= names and lines[-1] == "ready"


def test_emulate_bad_faults_exit_2():
    result = invoke("emulate", "--port", "0", "--faults", "500=2")
    assert result.exit_code == 2 and "--faults" in result.stderr


def test_journal_doubt_adopt_resend_on_a_real_entry_in_doubt(tmp_path):
    """The README's recovery commands, as a user runs them after a run stopped on doubt."""
    from fal_assets.journal import Journal, State

    out = tmp_path / "work"
    journal = Journal.at(out / "journal.db")
    try:
        for key in ("k-adopt", "k-resend"):
            journal.begin(key, "fal-ai/flux-2-trainer", {"steps": 1000}, backend="fal", estimate_usd=6.40)
            journal.mark_in_doubt(key, "killed between accept and record")
    finally:
        journal.close()
    doubt = invoke("journal", "doubt", "--out", str(out))
    assert doubt.exit_code == 0, doubt.output
    assert [line.split()[:3] for line in doubt.stdout.splitlines()] == [
        ["k-adopt", "fal-ai/flux-2-trainer", "$6.40"], ["k-resend", "fal-ai/flux-2-trainer", "$6.40"]]
    adopted = invoke("journal", "adopt", "k-adopt", "req-123", "--out", str(out))
    assert adopted.exit_code == 0 and "adopted req-123" in adopted.stdout, adopted.output
    resent = invoke("journal", "resend", "k-resend", "--out", str(out))
    assert resent.exit_code == 0 and "sends it again" in resent.stdout, resent.output
    unknown = invoke("journal", "adopt", "no-such-key", "req-9", "--out", str(out))
    assert unknown.exit_code == 2 and unknown.stderr.strip().splitlines() == [
        "journal: no request no-such-key; `fal-assets journal doubt` lists the requests in doubt"]
    journal = Journal.at(out / "journal.db")
    try:
        assert journal.get("k-adopt").state == State.SUBMITTED and journal.get("k-adopt").request_id == "req-123"
        assert journal.get("k-resend").state == State.FAILED
    finally:
        journal.close()
