"""Fault injection: which failures the emulator fakes, how often, drawn from a seeded RNG."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Mapping

from ..errors import InvalidInput, Problem

FAULT_KINDS = ("429", "503", "drop", "hang", "nsfw")
"""``429`` rate limit, ``503`` runner scheduling failure, ``drop`` TCP abort without an
answer, ``hang`` an answer that never comes, ``nsfw`` a flagged (black) result."""

# Which faults each kind of call can get, in the order they are drawn.
CALL_FAULTS = {
    "submit": ("429", "503", "drop", "hang"),
    "status": ("429", "503", "drop", "hang"),
    "result": ("429", "503", "drop", "hang"),
    "media": ("503", "drop"),
    "job": ("nsfw",),
}

_ALLOWED = "allowed: comma-separated KIND=PROBABILITY with KIND one of 429, 503, drop, hang, nsfw and PROBABILITY from 0 to 1, e.g. 429=0.3,drop=0.02"


def _problem(message: str) -> Problem:
    return Problem("emulate", "--faults", f"{message}; {_ALLOWED}")


def parse_faults(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"429=0.3,drop=0.02"`` (or a mapping) -> ``{"429": 0.3, "drop": 0.02}``.

    Raises InvalidInput, one line per bad item, naming ``--faults`` and what is allowed.
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        items = [(str(k).strip(), v) for k, v in text.items()]
    else:
        items = []
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            kind, sep, value = part.partition("=")
            if not sep:
                raise InvalidInput([_problem(f"{part!r} has no '='")])
            items.append((kind.strip(), value.strip()))
    problems: list[Problem] = []
    faults: dict[str, float] = {}
    for kind, value in items:
        if kind not in FAULT_KINDS:
            problems.append(_problem(f"unknown fault {kind!r}"))
            continue
        if kind in faults:
            problems.append(_problem(f"fault {kind!r} is given twice"))
            continue
        try:
            probability = float(value)
        except (TypeError, ValueError):
            problems.append(_problem(f"{kind}={value!r} is not a number"))
            continue
        if not 0.0 <= probability <= 1.0:  # also rejects nan
            problems.append(_problem(f"{kind}={value} is outside 0..1"))
            continue
        faults[kind] = probability
    if problems:
        raise InvalidInput(problems)
    return faults


class FaultDice:
    """Draws faults per call from one ``random.Random(seed)``: the same seed and the same
    order of calls give the same faults. Counts every fault it hands out."""

    def __init__(self, faults: Mapping[str, float] | None = None, seed: int | None = None):
        self.faults = dict(faults or {})
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def draw(self, call: str) -> str | None:
        """The fault this ``call`` (submit, status, result, media, job) gets, or None.

        Each applicable kind is drawn independently, in a fixed order; the first hit wins.
        """
        with self._lock:
            for kind in CALL_FAULTS[call]:
                probability = self.faults.get(kind, 0.0)
                if probability > 0.0 and self._random.random() < probability:
                    self.counts[kind] += 1
                    return kind
        return None

    def seed_value(self) -> int:
        """A seed for a request that came without one, from the same reproducible stream."""
        with self._lock:
            return self._random.randrange(0, 2**32)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
