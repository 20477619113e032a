"""What the demo and the backfill command share: the instance, the runs they launch, and
what those runs paid (the journal's requests labelled with their run ids)."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from fal_assets.atomic import write_text

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the full event log is in `make dev`


def usd(amount: float) -> str:
    """Dollars with at least 2 and at most 6 decimals: $0.03, $0.0125."""
    whole, _, frac = f"{amount:.6f}".partition(".")
    return f"${whole}.{frac.rstrip('0').ljust(2, '0')}"


def quiet_instance_home(home: Path) -> None:
    """A dagster.yaml for the demo's instance: no telemetry, nothing else changed."""
    config = home / "dagster.yaml"
    if not config.exists():
        write_text(config, "telemetry:\n  enabled: false\n")


@contextmanager
def open_instance():
    """The instance at ``$DAGSTER_HOME`` (default ``.dagster``), its storage created under a
    file lock: two commands started together on a fresh home would otherwise both create
    Dagster's tables ("table runs already exists")."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster").absolute())))
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".fal-assets-init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            quiet_instance_home(home)
            instance = dg.DagsterInstance.get()
            instance.get_runs(limit=1)  # creates the run, event log and schedule storage now
            instance.event_log_storage.get_latest_materialization_events([dg.AssetKey("character_spec")])
            instance.schedule_storage
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    with instance:
        yield instance


def failure_line(result) -> str:
    """The one line that matters of a failed run: the innermost error of its first failed step."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
            text = " / ".join(lines[:3]) if lines else error.cls_name or "error"
            return f"{event.step_key}: {text.split(': ', 1)[-1] if text.startswith(('dagster.', 'fal_assets.')) else text}"
    return "the run failed before any step ran; see `make dev` for the run"


class Runs:
    """The runs one command launched: their ids (to tell what they paid) and failures."""

    def __init__(self, everything, instance, resources):
        self.everything, self.instance, self.resources = everything, instance, resources
        self.ids: list[str] = []
        self.failures: list[str] = []

    def materialize(self, selection, tags, **options) -> bool:
        result = dg.materialize(self.everything, selection=selection, instance=self.instance, resources=self.resources,
                                tags=tags, raise_on_error=False, **options)
        self.ids.append(result.run_id)
        if not result.success:
            self.failures.append(failure_line(result))
        return result.success


def spend_line(fal, run_ids: list[str]) -> str:
    """What these runs paid, from the journal: only requests they sent themselves, so two
    commands running at once each report their own spend."""
    from fal_assets.journal import State

    wanted = set(run_ids)
    journal = fal.settings().journal()
    try:
        mine = [e for e in journal.entries() if e.labels.get("run_id") in wanted]
    finally:
        journal.close()
    done = [e for e in mine if e.state == State.COMPLETED]
    billed = round(sum(e.cost_usd or 0.0 for e in done if e.cost_kind == "billed"), 6)
    estimated = round(sum(e.estimate_usd or 0.0 for e in done), 6)
    unfinished = len(mine) - len(done)
    line = (f"this command sent {len(done)} new request{'s' if len(done) != 1 else ''}: billed {usd(billed)} "
            f"(fal's prices: {usd(estimated)}); everything else came from the journal at $0")
    return line + (f"; {unfinished} request(s) not completed (see `fal-assets` journal or the cost report)" if unfinished else "")
