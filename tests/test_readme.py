"""Every shell command in the README runs as written, from a fresh copy of the example
folder, or says why a test cannot run it (a cluster, a broker, an install).

A command added to the README without a way to run it here or a reason below fails
this test, so the README cannot drift into commands that do not work.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

NOT_HERE = {  # command prefix -> why this test does not run it
    "make demo": "the demo runs in test_dagster (demo.run); `make` would set up a second venv",
    "make test": "what CI itself runs",
    "pip install": "installs packages",
    "export ": "sets a variable for the commands after it",
    "kubectl ": "needs a Kubernetes cluster",
    "dagster-celery ": "needs a Celery broker",
    "dagster job execute ": "needs the Celery deployment (tests/test_celery.py runs it)",
    ".venv/bin/python bench/": "benchmarks (make bench), minutes each",
    "fal-assets journal adopt": "KEY and REQUEST_ID are placeholders: test_cli runs it on a real entry in doubt",
    "fal-assets journal resend": "KEY is a placeholder: test_cli runs it on a real entry in doubt",
}
LONG_RUNNING = {"fal-assets emulate": "ready"}  # a server: runs until it prints this line


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"^\s*```bash\n(.*?)^\s*```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_readme_has_commands():
    commands = readme_commands()
    assert any(c.startswith("fal-assets ") for c in commands) and any(c.startswith("make demo") for c in commands)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "characters", work / "characters")
    (work / "dagster").mkdir()
    return work


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs_as_written(command, workdir):
    if any(command.startswith(prefix) for prefix in NOT_HERE):
        pytest.skip(next(why for prefix, why in NOT_HERE.items() if command.startswith(prefix)))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DAGSTER_HOME": str(workdir / "dagster"),
           "PYTHONPATH": str(ROOT)}
    env.pop("FAL_KEY", None)
    shell = command.replace("python -m", f"{sys.executable} -m", 1) if command.startswith("python ") else command
    shell = shell.replace("--port 8443", "--port 0")  # any free port: the fixed one may be taken
    ready = next((line for prefix, line in LONG_RUNNING.items() if command.startswith(prefix)), None)
    if ready:
        proc = subprocess.Popen(shell, shell=True, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if line.strip() == ready:
                    break
            assert seen and seen[-1].strip() == ready, "".join(seen)[-2000:]
        finally:
            os.killpg(proc.pid, 9)
            proc.wait()
        return
    done = subprocess.run(shell, shell=True, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
