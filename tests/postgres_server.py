"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary folder, listen
on 127.0.0.1 (a free port) and a socket folder inside it, trust auth, stop at the end.

Uses the server binaries of Debian's ``postgresql`` package (``/usr/lib/postgresql/<ver>/bin``,
or ``PG_BIN``, or ``pg_ctl`` on PATH); without them the tests that need the server skip.
PostgreSQL refuses to run as root, so as root the binaries run as the ``postgres`` user.

    import postgres_server
    postgres = postgres_server.postgres  # the session fixture: a running PostgresServer
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUPERUSER = "postgres"
#: Dagster's storage on this server, from the DAGSTER_PG_* variables (as the README's dagster.yaml)
DAGSTER_STORAGE_YAML = """\
storage:
  postgres:
    postgres_db:
      hostname: {env: DAGSTER_PG_HOST}
      port: {env: DAGSTER_PG_PORT}
      username: {env: DAGSTER_PG_USERNAME}
      password: {env: DAGSTER_PG_PASSWORD}
      db_name: {env: DAGSTER_PG_DB}
      scheme: postgresql+psycopg2  # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3
"""
START_TIMEOUT_S = 30


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: ``PG_BIN``, then PATH, then the newest
    ``/usr/lib/postgresql/<ver>/bin``."""
    candidates = [os.environ.get("PG_BIN", "")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates += reversed(versions)
    for folder in filter(None, candidates):
        if all((Path(folder) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """One cluster in ``root``; ``url(db)`` is a SQLAlchemy URL, ``dsn(db)`` a libpq one."""

    bindir: Path
    root: Path
    port: int = 0
    databases: list[str] = field(default_factory=list)
    durable: bool = False  # tests: fsync off (throwaway data); benchmarks: a real server's fsync

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # "root" execution of the PostgreSQL server is not permitted
            if shutil.which("runuser"):
                command = ["runuser", "-u", SUPERUSER, "--", *command]
            else:
                command = ["su", SUPERUSER, "-s", "/bin/sh", "-c", shlex.join(command)]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}{self.log_text()}")
        return proc

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> "PostgresServer":
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(SUPERUSER)
            for path in (self.root, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.datadir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")
        last = ""
        for _ in range(3):  # the free port can be taken between the probe and the bind
            self.port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} -c max_connections=200"
                       + ("" if self.durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"))
            proc = self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w",
                             "-t", str(START_TIMEOUT_S), "-o", options, "start", check=False)
            if proc.returncode == 0:
                return self
            last = proc.stdout + proc.stderr + self.log_text()
        raise RuntimeError(f"PostgreSQL did not start in {self.root}:\n{last}")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop", check=False)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (owned by the superuser) and return its SQLAlchemy URL."""
        import psycopg2

        conn = psycopg2.connect(self.dsn("postgres"))
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        self.databases.append(name)
        return self.url(name)

    def dsn(self, db: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={db}"

    def url(self, db: str) -> str:
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{db}"


def skip_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None."""
    if find_bindir() is None:
        return ("PostgreSQL server binaries not found (PG_BIN, pg_ctl on PATH, /usr/lib/postgresql/*/bin); "
                "install them with: apt-get install -y postgresql")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    missing = [name for name in ("psycopg2", "dagster_postgres") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed (pip install -e '.[postgres]')"
    return None


@pytest.fixture(scope="session")
def postgres():
    """A running throwaway PostgreSQL server for the whole session, always stopped at the end."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="fal-assets-pg-"))
    server = PostgresServer(find_bindir(), root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        for _ in range(20):  # the postmaster may still be removing its files
            shutil.rmtree(root, ignore_errors=True)
            if not root.exists():
                break
            time.sleep(0.1)
