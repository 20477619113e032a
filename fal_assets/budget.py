"""Spending caps, checked before a request is sent: per run and per period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .errors import BudgetExceeded, InvalidInput, Problem

PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Budget:
    """Caps in dollars; ``None`` means no cap. Only billed backends spend money."""

    per_run_usd: float | None = None
    per_period_usd: float | None = None
    period: str = "month"

    def __post_init__(self) -> None:
        problems = []
        if self.period not in PERIODS:
            problems.append(Problem("budget", "period", f"{self.period!r} is not one of {', '.join(PERIODS)}"))
        for name in ("per_run_usd", "per_period_usd"):
            value = getattr(self, name)
            if value is not None and value < 0:
                problems.append(Problem("budget", name, f"{value} is negative; a cap is dollars >= 0"))
        if problems:
            raise InvalidInput(problems)


def period_start(period: str, now: datetime) -> datetime:
    """The start (UTC) of the day, ISO week or calendar month that holds ``now``."""
    day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def refusal(what: str, scope: str, spent: float, estimate: float, cap: float) -> str:
    return (
        f"budget: {what} would cost ${estimate:.4f}; {scope} spent ${spent:.4f}, "
        f"projected ${spent + estimate:.4f} > cap ${cap:.2f}; nothing was sent"
    )


class BudgetGuard:
    """Refuses a request that would cross a cap, before it is sent.

    The period cap reads the journal, which counts in-flight claims at their
    estimate, so parallel processes cannot overshoot it together. ``backend`` is None
    for a backend that bills nothing (local): no cap applies there.
    """

    def __init__(self, budget: Budget, journal, backend: str | None, clock=lambda: datetime.now(timezone.utc)):
        self.budget = budget
        self.journal = journal
        self.backend = backend
        self.clock = clock
        self.run_spent = 0.0

    def claim(self, estimate: float, *, what: str) -> None:
        """Check both caps and hold ``estimate`` against the run's cap, or refuse."""
        if self.backend is None:
            return
        budget = self.budget
        if budget.per_run_usd is not None and self.run_spent + estimate > budget.per_run_usd + 1e-9:
            raise BudgetExceeded(refusal(what, "this run", self.run_spent, estimate, budget.per_run_usd))
        if budget.per_period_usd is not None:
            start = period_start(budget.period, self.clock())
            # the journal already counts this request's own claim at its estimate
            projected = self.journal.spend_since(start, backend=self.backend, pending=True)
            if projected > budget.per_period_usd + 1e-9:
                raise BudgetExceeded(
                    refusal(what, f"this {budget.period}", projected - estimate, estimate, budget.per_period_usd)
                )
        self.run_spent += estimate

    def release(self, estimate: float) -> None:
        """Give back a claim whose request was never sent."""
        if self.backend is not None:
            self.run_spent -= estimate

    def settle(self, estimate: float, actual: float) -> None:
        if self.backend is not None:
            self.run_spent += actual - estimate
