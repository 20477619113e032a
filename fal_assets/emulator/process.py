"""``EmulatorProcess``: the emulator as a subprocess, for tests and the CLI's demo."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

ENV_KEYS = ("FAL_RUN_HOST", "FAL_QUEUE_RUN_HOST", "SSL_CERT_FILE")


def _faults_arg(faults: str | Mapping[str, float]) -> str:
    if isinstance(faults, Mapping):
        return ",".join(f"{kind}={probability}" for kind, probability in faults.items())
    return str(faults)


def _no_proxy_for_loopback(env: dict[str, str]) -> None:
    current = env.get("NO_PROXY") or env.get("no_proxy")
    env["NO_PROXY"] = env["no_proxy"] = ",".join(p for p in (current, "127.0.0.1,localhost") if p)


class EmulatorProcess:
    """Starts ``python -m fal_assets.emulator`` and waits for ``ready``.

    ``env`` holds FAL_RUN_HOST, FAL_QUEUE_RUN_HOST and SSL_CERT_FILE; a process that
    imports ``fal_client`` with them set talks to the emulator. Stops it on exit.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float = 0.0,
        concurrency: int = 2,
        faults: str | Mapping[str, float] | None = None,
        seed: int | None = None,
        cert_dir: str | Path | None = None,
        hang_seconds: float | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 60.0,
        python: str = sys.executable,
        reject_at: str | None = None,
    ):
        self.args = [python, "-m", "fal_assets.emulator", "--port", str(port), "--host", host,
                     "--latency", str(latency), "--concurrency", str(concurrency)]
        if faults:
            self.args += ["--faults", _faults_arg(faults)]
        if seed is not None:
            self.args += ["--seed", str(seed)]
        if cert_dir is not None:
            self.args += ["--cert-dir", str(cert_dir)]
        if hang_seconds is not None:
            self.args += ["--hang-seconds", str(hang_seconds)]
        if reject_at is not None:
            self.args += ["--reject-at", reject_at]
        self.startup_timeout = startup_timeout
        self.env: dict[str, str] = {}
        self.process: subprocess.Popen[str] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="fal-emulator-", suffix=".log", delete=False)
        self._lines: queue.Queue[str | None] = queue.Queue()

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> "EmulatorProcess":
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        _no_proxy_for_loopback(env)  # webhooks to 127.0.0.1 must not go through a proxy
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, text=True, env=env
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"emulator not ready after {self.startup_timeout}s:\n{self.log_text()}")
            if line is None:
                code = self.process.wait()
                raise RuntimeError(f"emulator exited with {code} before ready:\n{self.log_text()}")
            if line == "ready":
                break
            key, sep, value = line.partition("=")
            if sep and key in ENV_KEYS:
                self.env[key] = value
        missing = [key for key in ENV_KEYS if key not in self.env]
        if missing:
            self.stop()
            raise RuntimeError(f"emulator did not print {', '.join(missing)}")
        return self

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:  # keeps draining after ready
            self._lines.put(line.strip())
        self._lines.put(None)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> "EmulatorProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        self._log.close()
        try:
            os.unlink(self._log.name)
        except FileNotFoundError:
            pass

    # --- talking to it ---------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"https://{self.env['FAL_QUEUE_RUN_HOST']}"

    def log_text(self) -> str:
        """What the emulator wrote to stderr (its log: requests, faults, bills)."""
        return Path(self._log.name).read_text(errors="replace")

    def client_env(self, base: Mapping[str, str] | None = None, fal_key: str | None = "emulator-test-key") -> dict[str, str]:
        """An environment for a process that runs ``fal_client`` against this emulator."""
        env = dict(os.environ if base is None else base)
        env.update(self.env)
        _no_proxy_for_loopback(env)
        if fal_key is not None:
            env["FAL_KEY"] = fal_key
        return env

    def http(self, **kwargs: Any):
        """An ``httpx.Client`` that trusts the emulator's CA, based at ``base_url``."""
        import httpx

        from .tls import client_context

        return httpx.Client(base_url=self.base_url, verify=client_context(self.env["SSL_CERT_FILE"]),
                            trust_env=False, **kwargs)

    def ledger(self) -> dict[str, Any]:
        """``GET /_emulator/ledger``: submits, bills, faults, the most jobs in progress."""
        with self.http(timeout=10) as client:
            response = client.get("/_emulator/ledger")
            response.raise_for_status()
            return response.json()

    def reset(self, faults: str | Mapping[str, float] | None = None, seed: int | None = None) -> dict[str, Any]:
        """Clear the ledger; with ``faults`` (``""`` for none) also set new faults and seed."""
        body: dict[str, Any] = {}
        if faults is not None:
            body["faults"] = _faults_arg(faults)
        if seed is not None:
            body["seed"] = seed
        with self.http(timeout=10) as client:
            response = client.post("/_emulator/reset", json=body)
            response.raise_for_status()
            return response.json()
