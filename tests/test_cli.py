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


# -- the CLI's bad-input corpus: every case one line on stderr, exit 2, nothing written --

KEY = "0123abcd-key-id:fedcba9876543210secret"


def _file(tmp_path: Path, name: str, content: bytes | str) -> str:
    path = tmp_path / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return str(path)


def _image(tmp_path: Path) -> str:
    from PIL import Image

    path = tmp_path / "ref.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(path)
    return str(path)


def _generate(tmp_path: Path, *extra: str) -> list[str]:
    return ["generate", "fal-ai/flux-2/flash/edit", "--arg", "prompt=make it blue", "--backend", "local",
            "--out", str(tmp_path / "work"), *extra]


def _t2i(tmp_path: Path, *extra: str) -> list[str]:
    return ["generate", "fal-ai/flux-2-pro", "--arg", "prompt=a knight", "--out", str(tmp_path / "work"), *extra]


REQUEST = '{"endpoint": "fal-ai/flux-2-pro", "arguments": {"prompt": "%s"}}'

# (id, arguments from tmp_path, environment, words the one line must hold)
BAD_CLI = [
    # files that are not text, too deep or too big
    ("request-binary", lambda t: ["validate", _file(t, "r.json", b"\x89PNG\r\n\x1a\n\x00\x00")], {}, ["r.json", "not a text file", "UTF-8"]),
    ("request-not-utf8", lambda t: ["validate", _file(t, "r.json", (REQUEST % "caf\xe9").encode("latin-1"))], {}, ["r.json", "not UTF-8 text"]),
    ("request-deep", lambda t: ["validate", _file(t, "r.json", "[" * 100_000 + "]" * 100_000)], {}, ["r.json", "nests deeper than 20"]),
    ("request-huge", lambda t: ["validate", _file(t, "r.json", REQUEST % ("x" * 2_000_000))], {}, ["r.json", "larger than a request may be (1 MB)"]),
    ("spec-alias-bomb", lambda t: ["validate", _file(t, "s.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi")))], {}, ["s.yaml", "expands to more than 100,000"]),
    ("spec-deep", lambda t: ["validate", _file(t, "s.yaml", "a: " + "[" * 100_000 + "]" * 100_000)], {}, ["s.yaml", "nests deeper than 20"]),
    ("prices-binary", lambda t: ["prices", "--prices", _file(t, "p.yaml", b"\x00\x01prices")], {}, ["p.yaml", "not a text file"]),
    ("prices-deep", lambda t: ["prices", "--prices", _file(t, "p.yaml", "a: " + "[" * 100_000 + "]" * 100_000)], {}, ["p.yaml", "nests deeper"]),
    ("prices-device", lambda t: ["prices", "--prices", "/dev/zero"], {}, ["/dev/zero", "not a regular file"]),
    ("arg-deep", lambda t: ["estimate", "fal-ai/flux-2-pro", "--arg", "prompt=" + "[" * 5000], {}, ["--arg: prompt", "nests deeper than 20"]),
    # numbers
    ("count-huge", lambda t: ["estimate", "fal-ai/flux-2-pro", "--arg", "prompt=x", "--count", str(10**30)], {}, ["--count", "100000"]),
    ("count-zero", lambda t: ["estimate", "fal-ai/flux-2-pro", "--arg", "prompt=x", "--count", "0"], {}, ["estimate: --count", "greater than or equal to 1"]),
    ("count-text", lambda t: ["estimate", "fal-ai/flux-2-pro", "--arg", "prompt=x", "--count", "abc"], {}, ["--count", "valid integer"]),
    ("input-size-huge", lambda t: ["estimate", "fal-ai/flux-2/flash/edit", "--arg", "prompt=x", "--arg", 'image_urls=["https://x/a.png"]',
                                   "--input-size", "99999999999x99999999999"], {}, ["--input-size", "at most 16384 px a side"]),
    ("seed-huge", lambda t: ["estimate", "fal-ai/flux-2-pro", "--arg", "prompt=x", "--arg", f"seed={2**32}"], {}, ["arguments.seed", "0 to 4294967295"]),
    ("concurrency-zero", lambda t: _t2i(t, "--concurrency", "0"), {}, ["generate: --concurrency", "greater than or equal to 1"]),
    ("port-too-big", lambda t: ["emulate", "--port", "70000"], {}, ["emulate: --port", "less than or equal to 65535"]),
    ("unknown-option", lambda t: ["estimate", "fal-ai/flux-2-pro", "--cont", "3"], {}, ["No such option: --cont", "--count"]),
    ("missing-argument", lambda t: ["estimate"], {}, ["Missing argument", "endpoint"]),
    # files given to generate --file
    ("file-index-huge", lambda t: _generate(t, "--file", f"image_urls.300000000={_image(t)}"), {}, ["image_urls.300000000", "0 to 63"]),
    ("file-bad-path", lambda t: _generate(t, "--file", f"image urls={_image(t)}"), {}, ["--file", "not an argument path"]),
    ("file-not-an-image", lambda t: _generate(t, "--file", "image_urls.0=/etc/passwd"), {}, ["/etc/passwd: image_urls.0", "not an image"]),
    ("file-proc", lambda t: _generate(t, "--file", "image_urls.0=/proc/self/status"), {}, ["/proc/self/status", "not an image"]),
    ("file-device", lambda t: _generate(t, "--file", "image_urls.0=/dev/zero"), {}, ["/dev/zero", "not a regular file"]),
    ("file-folder", lambda t: _generate(t, "--file", f"image_urls.0={t}"), {}, ["image_urls.0", "is a folder"]),
    ("file-missing", lambda t: _generate(t, "--file", f"image_urls.0={t / 'nope.png'}"), {}, ["nope.png", "cannot read the file"]),
    ("file-truncated", lambda t: _generate(t, "--file", "image_urls.0=" + _file(t, "cut.png", Path(_image(t)).read_bytes()[:60])),
     {}, ["cut.png", "not an image"]),
    # keys
    ("fal-without-key", lambda t: _t2i(t, "--backend", "fal"), {"FAL_KEY": None}, ["FAL_KEY", "is not set", "--backend local"]),
    ("key-in-prompt", lambda t: ["generate", "fal-ai/flux-2-pro", "--arg", f"prompt=a knight {KEY}", "--backend", "local",
                                 "--out", str(t / "work")], {"FAL_KEY": KEY}, ["arguments", "holds the value of FAL_KEY", "nothing was sent"]),
    # journals
    ("journal-bad-url", lambda t: _t2i(t, "--journal", "notaurl://x"), {}, ["journal notaurl://x", "not a database URL", "sqlite:///PATH"]),
    ("journal-missing-folder", lambda t: _t2i(t, "--journal", f"sqlite:///{t}/missing/j.db"), {}, ["missing", "does not exist", "create it"]),
    ("journal-closed-port", lambda t: _t2i(t, "--journal", "postgresql+psycopg2://u:pw@127.0.0.1:1/db"), {},
     ["u:***@127.0.0.1:1", "cannot connect to 127.0.0.1:1", "start the database server"]),
    ("journal-corrupt", lambda t: _t2i(t, "--journal", "sqlite:///" + _file(t, "j.db", b"SQLite format 3\x00" + bytes(range(256)) * 20)), {},
     ["j.db", "not a readable SQLite database", "backup"]),
    ("journal-not-a-database", lambda t: _t2i(t, "--journal", "sqlite:///" + _file(t, "j.db", "notes\n")), {}, ["j.db", "not a readable SQLite database"]),
]


@pytest.mark.parametrize("make_args, env, words", [c[1:] for c in BAD_CLI], ids=[c[0] for c in BAD_CLI])
def test_bad_cli_input_is_one_line_and_exit_2(tmp_path, monkeypatch, make_args, env, words):
    for name in ("FAL_KEY", "FAL_AI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    result = invoke(*make_args(tmp_path))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and "Traceback" not in result.output and "╭" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]
    assert "pw@" not in lines[0] and KEY not in lines[0] and "fedcba9876543210secret" not in lines[0]
    store = tmp_path / "work" / "store"
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))  # nothing half-written


def test_cli_corpus_is_big_enough():
    assert len({c[0] for c in BAD_CLI}) == len(BAD_CLI) >= 30


def test_a_locked_journal_is_one_line(tmp_path, monkeypatch):
    import sqlite3

    from fal_assets import journal

    monkeypatch.setattr(journal, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    db = tmp_path / "j.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (a)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = invoke(*_t2i(tmp_path, "--journal", f"sqlite:///{db}"))
    finally:
        holder.close()
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"journal sqlite:///{db}: is locked") and "let that process finish" in line


def test_a_read_only_journal_is_one_line(tmp_path):
    import sqlite3

    db = tmp_path / "j.db"
    sqlite3.connect(db).close()
    result = invoke(*_t2i(tmp_path, "--journal", f"sqlite:///file:{db}?mode=ro&uri=true"))
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "is read-only" in line and "make both writable" in line


def test_cli_and_pricing_agree_on_the_count_limit():
    from fal_assets import cli, pricing

    assert cli.MAX_COUNT == pricing.MAX_COUNT


def test_help_still_shows():
    result = invoke("estimate", "--help")
    assert result.exit_code == 0 and "--count" in result.output
    assert invoke().exit_code == 2  # a bare command shows its help, as before
