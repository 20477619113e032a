"""Running the emulator: bind, TLS, print the client's environment, stop on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Mapping, TextIO

from aiohttp import web

from ..errors import InvalidInput, Problem
from .faults import parse_faults
from .server import REJECT_AT, Emulator
from .tls import server_tls

log = logging.getLogger("fal_assets.emulator")


def _warm_up() -> None:
    """Import and run the renderer, catalog and prices once before ``ready``, so the
    first jobs take ``--latency`` like the rest instead of paying for imports."""
    from ..jobs import run_job
    from ..pricing import estimate

    arguments = {"prompt": "warm-up figure, plain white background", "image_size": {"width": 64, "height": 64}, "seed": 0}
    run_job("fal-ai/flux-2-pro", arguments, fetch=lambda url: (b"", ""))
    estimate("fal-ai/flux-2-pro", arguments)


def _host_for_url(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInput([Problem("emulate", "--port", f"cannot listen on {host}:{port}: {exc.strerror}")]) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(
    emulator: Emulator,
    *,
    port: int,
    host: str = "127.0.0.1",
    cert_dir: Path | None = None,
    stdout: TextIO = sys.stdout,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set, or SIGINT/SIGTERM when running in the main thread."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    sock = _bind(host, port)
    tls = None
    runner = web.AppRunner(emulator.app(), access_log=None, handle_signals=False, handler_cancellation=True,
                           shutdown_timeout=1.0)
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread: the caller sets ``stop``
    try:
        tls = server_tls(cert_dir, [host])
        await loop.run_in_executor(None, _warm_up)
        await runner.setup()
        await web.SockSite(runner, sock, ssl_context=tls.context, shutdown_timeout=1.0).start()
        address = f"{_host_for_url(host)}:{sock.getsockname()[1]}"
        emulator.media.local_hosts.update({address, f"localhost:{sock.getsockname()[1]}"})
        print(f"FAL_RUN_HOST={address}", file=stdout)
        print(f"FAL_QUEUE_RUN_HOST={address}", file=stdout)
        print(f"SSL_CERT_FILE={tls.ca_file}", file=stdout)
        print("ready", file=stdout, flush=True)
        log.info("fal queue emulator on https://%s (concurrency %d, latency %.2fs, faults %s)",
                 address, emulator.queue.concurrency, emulator.latency, emulator.dice.faults or "none")
        await stop.wait()
        log.info("stopping")
    finally:
        emulator.stopping.set()
        await runner.cleanup()
        sock.close()
        if tls is not None:
            tls.cleanup()
        for sig in handled:
            loop.remove_signal_handler(sig)


def run_emulator(
    port: int,
    latency: float = 0.0,
    concurrency: int = 2,
    faults: str | Mapping[str, float] | None = None,
    seed: int | None = None,
    cert_dir: Path | None = None,
    host: str = "127.0.0.1",
    stdout: TextIO = sys.stdout,
    *,
    hang_seconds: float = 60.0,
    reject_at: str = "result",
) -> None:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM.

    Prints ``FAL_RUN_HOST=``, ``FAL_QUEUE_RUN_HOST=``, ``SSL_CERT_FILE=`` and ``ready``.
    Raises InvalidInput for bad options (one line each).
    """
    parsed = parse_faults(faults)
    problems = []
    if not 0 <= port <= 65535:
        problems.append(Problem("emulate", "--port", f"{port} is not a port; allowed: 0 (any free port) to 65535"))
    if concurrency < 1:
        problems.append(Problem("emulate", "--concurrency", f"{concurrency} is too small; allowed: 1 or more"))
    if latency < 0:
        problems.append(Problem("emulate", "--latency", f"{latency} is negative; allowed: 0 or more seconds"))
    if hang_seconds < 0:
        problems.append(Problem("emulate", "--hang-seconds", f"{hang_seconds} is negative; allowed: 0 or more"))
    if reject_at not in REJECT_AT:
        problems.append(Problem("emulate", "--reject-at", f"{reject_at!r} is not a mode; allowed: {', '.join(REJECT_AT)}"))
    if problems:
        raise InvalidInput(problems)
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s emulator %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)

    async def main() -> None:
        emulator = Emulator(latency=latency, concurrency=concurrency, faults=parsed, seed=seed,
                            hang_seconds=hang_seconds, reject_at=reject_at)
        await serve(emulator, port=port, host=host, cert_dir=cert_dir, stdout=stdout)

    asyncio.run(main())
