"""The cost report: every journaled request's spend by character, pose, variant, asset,
endpoint and day, with billed (fal) and estimated (local, $0 billed) dollars kept apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from . import atomic
from .budget import Budget, period_start

GROUPS = ["character", "pose", "variant", "asset", "endpoint", "day"]


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per request: its labels, endpoint, day, billed and estimated dollars."""
    columns = GROUPS + ["backend", "state", "billed_usd", "estimated_usd"]
    if not records:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame.from_records(records)
    for name in ("character", "pose", "variant", "asset"):
        if name not in df:
            df[name] = ""
        df[name] = df[name].fillna("").astype(str)
    stamp = pd.to_datetime(df["completed_at"].fillna(df["created_at"]), utc=True)
    df["day"] = stamp.dt.strftime("%Y-%m-%d")
    billed = df["cost_kind"].eq("billed")
    df["billed_usd"] = df["cost_usd"].fillna(0.0).where(billed, 0.0)
    df["estimated_usd"] = df["estimate_usd"].fillna(0.0).where(~billed & df["state"].eq("completed"), 0.0)
    return df[columns]


def by_group(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=GROUPS + ["requests", "billed_usd", "estimated_usd"])
    grouped = df.groupby(GROUPS, dropna=False).agg(
        requests=("endpoint", "size"), billed_usd=("billed_usd", "sum"), estimated_usd=("estimated_usd", "sum")
    )
    return grouped.reset_index().round({"billed_usd": 6, "estimated_usd": 6})


@dataclass
class CostReport:
    rows: pd.DataFrame
    by_group: pd.DataFrame
    billed_usd: float
    estimated_usd: float
    budget: dict[str, Any]
    csv_path: Path | None
    event_log: dict[str, Any] | None = None


def reconcile(billed_usd: float, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Billed dollars the orchestrator's event log recorded against the journal's.

    Each paid request is recorded once, by the materialization that paid for it (cache
    hits record $0), so the two agree unless a run paid and then failed before it
    materialized: that difference is shown, never hidden.
    """
    events_df = pd.DataFrame.from_records(events, columns=["asset", "partition", "cost_usd", "cost_kind", "timestamp"])
    billed_events = events_df[events_df["cost_kind"].eq("billed")]["cost_usd"].fillna(0.0)
    recorded = round(float(billed_events.sum()), 6)
    return {
        "materializations": int(len(events_df)),
        "event_log_billed_usd": recorded,
        "journal_billed_usd": round(billed_usd, 6),
        "paid_but_not_materialized_usd": round(billed_usd - recorded, 6),
    }


def cost_report(
    journal,
    *,
    budget: Budget | None = None,
    out_csv: Path | None = None,
    now: datetime | None = None,
    events: list[dict[str, Any]] | None = None,
) -> CostReport:
    """Build the report from the journal (and reconcile it with the orchestrator's
    event log when ``events`` are given); write the grouped table as CSV atomically."""
    rows = frame(journal.to_records())
    grouped = by_group(rows)
    billed, estimated = float(rows["billed_usd"].sum()), float(rows["estimated_usd"].sum())
    caps: dict[str, Any] = {}
    if budget is not None:
        start = period_start(budget.period, now or datetime.now(timezone.utc))
        caps = {
            "period": budget.period,
            "period_start": start.isoformat(),
            "spent_this_period_usd": round(journal.spend_since(start, pending=False), 6),
            "cap_per_period_usd": budget.per_period_usd,
            "cap_per_run_usd": budget.per_run_usd,
        }
    if out_csv is not None:
        atomic.write_text(out_csv, grouped.to_csv(index=False))
    checked = reconcile(billed, events) if events is not None else None
    return CostReport(rows, grouped, round(billed, 6), round(estimated, 6), caps, Path(out_csv) if out_csv else None, checked)
