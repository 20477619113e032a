"""The cost report reconciles with the journal to the cent, billed and estimated apart."""

from datetime import datetime, timezone

import pytest

from fal_assets import journal as jr
from fal_assets.budget import Budget
from fal_assets.costs import cost_report, reconcile


def record(journal, key, *, backend, cost, estimate, labels, kind):
    journal.begin(key, "fal-ai/flux-2/lora", {"prompt": key, "seed": 1}, backend=backend, estimate_usd=estimate, labels=labels)
    journal.mark_submitted(key, f"req-{key}")
    journal.mark_completed(key, files=[], cost_usd=cost, cost_kind=kind)


@pytest.fixture
def journal(tmp_path):
    j = jr.Journal.at(tmp_path / "journal.db")
    record(j, "a", backend="fal", cost=0.021, estimate=0.021, labels={"character": "glitch", "pose": "idle", "asset": "pose_images"}, kind="billed")
    record(j, "b", backend="fal", cost=0.021, estimate=0.021, labels={"character": "glitch", "pose": "run", "asset": "pose_images"}, kind="billed")
    record(j, "c", backend="local", cost=0.0, estimate=8.0, labels={"character": "rivet", "asset": "character_lora"}, kind="estimated")
    j.begin("d", "fal-ai/flux-2-pro", {"prompt": "d"}, backend="fal", estimate_usd=0.03, labels={"character": "rivet"})
    j.mark_failed("d", "not sent")
    yield j
    j.close()


def test_totals_reconcile_with_the_journal(journal, tmp_path):
    report = cost_report(journal, budget=Budget(per_period_usd=10), out_csv=tmp_path / "costs.csv",
                         now=datetime.now(timezone.utc))
    totals = journal.totals()
    assert report.billed_usd == pytest.approx(totals["billed_usd"]) == pytest.approx(0.042)
    assert report.estimated_usd == pytest.approx(8.0)  # local spend is estimated, never billed
    grouped = report.by_group
    assert grouped["billed_usd"].sum() == pytest.approx(0.042)
    glitch_idle = grouped[(grouped.character == "glitch") & (grouped.pose == "idle")]
    assert glitch_idle["billed_usd"].item() == pytest.approx(0.021)
    assert (tmp_path / "costs.csv").read_text().startswith("character,pose,variant,asset,endpoint,day,requests,billed_usd,estimated_usd")
    assert report.budget["cap_per_period_usd"] == 10 and report.budget["spent_this_period_usd"] == pytest.approx(0.042)


def test_event_log_reconciliation_shows_paid_but_unmaterialized():
    events = [{"asset": "pose_images", "partition": "glitch/idle", "cost_usd": 0.021, "cost_kind": "billed", "timestamp": 0}]
    checked = reconcile(0.042, events)
    assert checked["event_log_billed_usd"] == pytest.approx(0.021)
    assert checked["paid_but_not_materialized_usd"] == pytest.approx(0.021)
    assert reconcile(0.0, [])["materializations"] == 0


def test_empty_journal(tmp_path):
    report = cost_report(jr.Journal.at(tmp_path / "empty.db"))
    assert report.billed_usd == 0 and report.by_group.empty
