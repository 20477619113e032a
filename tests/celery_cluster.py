"""A scale-out deployment on one machine, for tests/test_celery.py and bench/celery_bench.py.

Dagster's own distributed executor (``dagster-celery``) with everything a team would run
on separate machines started here as separate processes:

- the broker: Redis from Debian's ``redis-server`` (``REDIS_SERVER`` or PATH), on a free port;
- Dagster's storage and the request journal: PostgreSQL (``postgres_server.py``);
- the store: moto's S3 server mode (``python -m moto.server``), one bucket;
- fal: the fal queue emulator (``EmulatorProcess``), driven through the real fal_client;
- a launcher folder (where ``dagster job execute`` runs each run's orchestration) and one
  folder per Celery worker, each with its own working copy, cache, Dagster scratch and
  copy of the character specs (specs are code: they ship with the image). Nothing is
  shared between the folders; every file a step needs comes from the bucket.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from postgres_server import DAGSTER_STORAGE_YAML

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "fal-assets"
STORE_URL = f"s3://{BUCKET}/store"
SENTINEL_KEY = "sk-sentinel-celery-7d1e:0a9f44c2"
PYTHON_MODULES = ("dagster_celery", "celery", "redis", "s3fs", "moto", "boto3", "psycopg2", "dagster_postgres")

# Each process keeps Dagster's scratch (compute logs off, artifacts) in its own folder,
# named by the environment, so a worker never writes into the launcher's home.
DAGSTER_YAML = DAGSTER_STORAGE_YAML + """\
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {env: DAGSTER_LOCAL_DIR}
compute_logs:
  module: dagster._core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
telemetry:
  enabled: false
"""

# The worker's side of the executor's config (dagster-celery worker start -y): same broker.
# Acknowledged late, a worker holds one step at a time: with early acks (Celery's default)
# a busy worker also reserves the next step, which then waits while another worker idles.
CELERY_YAML = """\
execution:
  config:
    broker: {env: CELERY_BROKER_URL}
    backend: {env: CELERY_RESULT_BACKEND}
    config_source:
      task_acks_late: true
"""


def redis_server() -> str | None:
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None


def skip_reason() -> str | None:
    """Why the deployment cannot start here, or None (PostgreSQL's own reasons aside)."""
    if redis_server() is None:
        return "redis-server not found (REDIS_SERVER or PATH); install it with: apt-get install -y redis-server"
    missing = [name for name in PYTHON_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed (pip install -e '.[dev]')"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: exited with {proc.returncode}:\n{log.read_text()[-3000:] if log else ''}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f}s:\n{log.read_text()[-3000:] if log and log.exists() else ''}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 15.0) -> None:
    """Stop a process this module started, and its process group (it leads one)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class Cluster:
    """Broker, store, fal and folders for one deployment; workers and runs on demand."""

    def __init__(self, root: Path, postgres, emulator, specs: dict[str, str], *, name: str = "celery"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.postgres, self.emulator, self.specs = postgres, emulator, specs
        self.dagster_db, self.journal_db = f"{name}_dagster", f"{name}_journal"
        self.journal_url = postgres.create_database(self.journal_db)
        self.dagster_url = postgres.create_database(self.dagster_db)
        self.procs: list[subprocess.Popen] = []
        self.workers: dict[str, subprocess.Popen] = {}
        self.redis = self.moto = None

    # -- services -------------------------------------------------------------------
    def start(self) -> "Cluster":
        redis_port, moto_port = free_port(), free_port()
        log = self.root / "redis.log"
        self.redis = self._spawn([redis_server(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", str(self.root), "--logfile", str(log)], self.root, log)
        self.broker = f"redis://127.0.0.1:{redis_port}/0"
        wait_for(lambda: self._redis_ping(redis_port), 30, "redis-server", self.redis, log)
        log = self.root / "moto.log"
        self.moto = self._spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)], self.root, log)
        self.s3_endpoint = f"http://127.0.0.1:{moto_port}"
        wait_for(lambda: self._http_ok(self.s3_endpoint + "/moto-api/"), 60, "moto server", self.moto, log)
        self.s3().create_bucket(Bucket=BUCKET)
        return self

    @staticmethod
    def _redis_ping(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            return False

    def s3(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def bucket_keys(self) -> list[str]:
        keys, token = [], None
        while True:
            page = self.s3().list_objects_v2(Bucket=BUCKET, **({"ContinuationToken": token} if token else {}))
            keys += [item["Key"] for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return keys

    def get(self, key: str) -> bytes:
        return self.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()

    # -- folders and environment ------------------------------------------------------
    def folder(self, name: str) -> Path:
        """A machine's own folder: specs, Dagster home, scratch; created once."""
        folder = self.root / name
        if not folder.exists():
            (folder / "characters").mkdir(parents=True)
            for character, text in self.specs.items():
                (folder / "characters" / f"{character}.yaml").write_text(text)
            (folder / ".dagster").mkdir()
            (folder / ".dagster" / "dagster.yaml").write_text(DAGSTER_YAML)
            (folder / "celery.yaml").write_text(CELERY_YAML)
        return folder

    def env(self, folder: Path) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("FAL_", "DAGSTER_", "CELERY_", "AWS_"))}
        bindir = str(Path(sys.executable).parent)
        env.update(self.emulator.env)
        env.update({
            "PATH": os.pathsep.join([bindir, env.get("PATH", "")]),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "DAGSTER_HOME": str(folder / ".dagster"),
            "DAGSTER_LOCAL_DIR": str(folder / ".dagster" / "local"),
            "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(self.postgres.port),
            "DAGSTER_PG_USERNAME": "postgres", "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": self.dagster_db,
            "FAL_KEY": SENTINEL_KEY,
            "FAL_ASSETS_JOURNAL_URL": self.journal_url,
            "FAL_ASSETS_STORE_URL": STORE_URL,
            "FAL_ASSETS_EXECUTOR": "celery",
            "FAL_ASSETS_CHARACTERS": "characters",
            "CELERY_BROKER_URL": self.broker,
            "CELERY_RESULT_BACKEND": self.broker,
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "NUMBA_CACHE_DIR": str(folder / ".cache" / "numba"),
        })
        return env

    def _spawn(self, command: list[str], cwd: Path, log: Path, env: dict | None = None) -> subprocess.Popen:
        handle = open(log, "ab")
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # its own process group
        handle.close()
        self.procs.append(proc)
        return proc

    # -- workers ----------------------------------------------------------------------
    def start_worker(self, name: str, *, concurrency: int = 1) -> subprocess.Popen:
        """``dagster-celery worker start`` in the worker's own folder (the README's recipe)."""
        folder = self.folder(name)
        log = folder / "worker.log"
        command = [str(Path(sys.executable).parent / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                   "-y", "celery.yaml", "-n", name, "--", f"--concurrency={concurrency}", "--without-gossip",
                   "--without-mingle"]
        proc = self._spawn(command, folder, log, self.env(folder))
        self.workers[name] = proc
        return proc

    def start_workers(self, *names: str, concurrency: int = 1) -> None:
        """Start the workers together, then wait until each says it is ready."""
        for name in names:
            self.start_worker(name, concurrency=concurrency)
        for name in names:
            log = self.folder(name) / "worker.log"
            wait_for(lambda: " ready." in log.read_text(errors="replace"), 120, f"worker {name}", self.workers[name], log)

    def kill_worker(self, name: str) -> None:
        """kill -9 the worker's whole process group: the machine is gone mid-step."""
        stop(self.workers.pop(name), signal.SIGKILL)

    def stop_worker(self, name: str) -> None:
        """A warm shutdown (SIGTERM): the worker finishes nothing new and exits."""
        stop(self.workers.pop(name))

    def worker_of(self, pid: int) -> str | None:
        """The worker whose process group holds ``pid``."""
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            return None
        return next((name for name, proc in self.workers.items() if proc.pid == group), None)

    # -- runs -------------------------------------------------------------------------
    def launch(self, job: str, tags: dict[str, str], *, run_config: dict | None = None, label: str | None = None) -> subprocess.Popen:
        """``dagster job execute`` from the launcher folder: it orchestrates, the workers run the steps."""
        folder = self.folder("launcher")
        label = label or job
        command = [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "dagster_project.definitions",
                   "-a", "defs", "-j", job, "--tags", json.dumps(tags)]
        if run_config:
            path = folder / f"{label}.config.json"
            path.write_text(json.dumps(run_config))  # YAML is a superset of JSON
            command += ["-c", str(path)]
        proc = self._spawn(command, folder, folder / f"{label}.log", self.env(folder))
        return proc

    def run(self, job: str, tags: dict[str, str], *, timeout: float = 300, **options) -> subprocess.Popen:
        proc = self.launch(job, tags, **options)
        proc.wait(timeout)
        return proc

    @contextmanager
    def instance(self):
        """This process's view of Dagster's storage (the same PostgreSQL database); the
        environment it reads is restored afterwards."""
        import dagster as dg

        wanted = {k: v for k, v in self.env(self.folder("launcher")).items() if k.startswith("DAGSTER_")}
        saved = {key: os.environ.get(key) for key in wanted}
        os.environ.update(wanted)
        try:
            with dg.DagsterInstance.from_config(wanted["DAGSTER_HOME"]) as instance:
                yield instance
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
