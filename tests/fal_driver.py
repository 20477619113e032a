"""Run a batch of requests through the real fal backend (fal_client) and print a JSON summary.

Used by the tests as a subprocess whose environment points fal_client at the emulator
(``FAL_QUEUE_RUN_HOST`` is read when fal_client is imported, so it must be set first).

    python tests/fal_driver.py SPEC.json
    SPEC: {"requests": [{"endpoint", "arguments"}], "workdir", "concurrency", "call_timeout", "retries",
           "journal_url" (optional; default SQLite in workdir)}
"""

import asyncio
import json
import sys
from pathlib import Path

from fal_assets.backends import make_backend
from fal_assets.budget import Budget
from fal_assets.generate import Generator, Request, Settings
from fal_assets.store import ContentStore


async def raw_submit(spec: dict) -> dict:
    """Send one request straight to the backend, skipping our validation (to see fal's 422)."""
    from fal_assets.errors import InvalidInput

    backend = make_backend("fal")
    try:
        await backend.submit(spec["endpoint"], spec["arguments"])
        return {"error_lines": []}
    except InvalidInput as exc:
        return {"error_lines": exc.lines()}
    finally:
        await backend.aclose()


def loosen_validation() -> None:
    """Let requests our catalog would refuse reach the emulator (to see fal's own 422)."""
    import fal_assets.generate as generate
    import fal_assets.pricing as pricing

    real = pricing.validate

    def loose(endpoint, arguments):
        try:
            return real(endpoint, arguments)
        except Exception:
            return dict(arguments)

    generate.validate = pricing.validate = loose


def arm_kill(hook: str, nth: int) -> None:
    """kill -9 this process right after the ``nth`` (1-based) time ``hook`` happens:
    ``sending`` (the send is on disk, the POST not yet out), ``accepted`` (fal's id on
    disk, nothing else yet), ``journaled`` (the journal has the id)."""
    import os
    import signal

    from fal_assets import journal as jr
    from fal_assets.accepted import AcceptedLog

    seen = {"n": 0}

    def after(cls, name):
        original = getattr(cls, name)

        def wrapped(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            seen["n"] += 1
            if seen["n"] == nth:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(cls, name, wrapped)

    after(*{"sending": (AcceptedLog, "sending"), "accepted": (AcceptedLog, "accepted"),
            "journaled": (jr.Journal, "mark_submitted")}[hook])


def hold_journal_lock(path: str) -> None:
    """Hold SQLite's write lock on the journal from the first accept to the end of this
    process (another process or a slow disk would), while the real work goes on."""
    import sqlite3
    import threading

    from fal_assets.accepted import AcceptedLog

    original = AcceptedLog.accepted
    holder = {}

    def accepted(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if not holder:
            ready = threading.Event()

            def hold():
                db = sqlite3.connect(path, timeout=30, isolation_level=None)
                db.execute("BEGIN EXCLUSIVE")
                holder["db"] = db
                ready.set()
                threading.Event().wait()  # until the process exits

            threading.Thread(target=hold, daemon=True).start()
            ready.wait(10)

    AcceptedLog.accepted = accepted


async def main(spec: dict) -> dict:
    if "raw_submit" in spec:
        return await raw_submit(spec["raw_submit"])
    if spec.get("loose_validation"):
        loosen_validation()
    if spec.get("kill_at"):
        arm_kill(spec["kill_at"], spec.get("kill_nth", 1))
    if spec.get("sqlite_busy_timeout") is not None:
        import fal_assets.generate as generate
        import fal_assets.journal as jr

        jr.SQLITE_BUSY_TIMEOUT_S = spec["sqlite_busy_timeout"]
        generate.RECORD_RETRY_BASE = 0.01
    if spec.get("hold_journal_lock"):
        hold_journal_lock(str(Path(spec["workdir"]) / "journal.db"))
    workdir = Path(spec["workdir"])
    settings = Settings(
        backend="fal",
        journal_url=spec.get("journal_url"),
        store_root=workdir / "store",
        concurrency=spec.get("concurrency", 2),
        call_timeout=spec.get("call_timeout", 10.0),
        retries=spec.get("retries", 8),
        poll_interval=spec.get("poll_interval", 0.05),
        retry_base=0.05,
        retry_cap=1.0,
        budget=Budget(per_run_usd=spec.get("budget_per_run_usd")),
        resend_in_doubt_below_usd=spec.get("resend_in_doubt_below_usd", 1.0),
        run_id=spec.get("run_id"),
    )
    backend = make_backend("fal", request_timeout=settings.call_timeout, **spec.get("backend_options", {}))
    journal = settings.journal()
    generator = Generator(backend, journal, ContentStore(settings.store_root), settings, on_event=lambda m: print(m, file=sys.stderr))
    requests = [Request(r["endpoint"], r["arguments"], files={k: Path(v) for k, v in r.get("files", {}).items()},
                        labels=r.get("labels", {})) for r in spec["requests"]]
    try:
        outcomes = await generator.generate_many(requests)
    finally:
        await backend.aclose()
    summary = {
        "backend": backend.label,
        "max_in_flight": generator.max_in_flight,
        "ok": [o.summary() for o in outcomes if not isinstance(o, BaseException)],
        "errors": [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)],
        "totals": journal.totals(),
        "run_spent": generator.guard.run_spent,
    }
    journal.close()
    return summary


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))))
