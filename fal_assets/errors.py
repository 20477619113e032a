"""Errors a user can act on, each problem one line: where, field, what is allowed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input.

    ``where`` is the file or endpoint the input came from, ``field`` a dotted path
    inside it (``arguments.image_size.width``, ``poses.run``), ``message`` what is
    wrong and what is allowed.
    """

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        field = f"{self.field}: " if self.field else ""
        return f"{self.where}: {field}{self.message}"

    def located(self, where: str) -> "Problem":
        """The same problem reported against a file: ``file: endpoint field: ...``."""
        return replace(self, where=f"{where}: {self.where}" if self.where else where)


class FalAssetsError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidInput(FalAssetsError, ValueError):
    """User input that was rejected before any money moved; one line per problem."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = list(problems)
        if not self.problems:
            raise ValueError("InvalidInput needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]

    def located(self, where: str) -> "InvalidInput":
        return type(self)(p.located(where) for p in self.problems)


class BudgetExceeded(FalAssetsError):
    """A request would cross a spending cap; refused before it was sent."""


class GenerationFailed(FalAssetsError):
    """A request failed after its last retry, or fal rejected it."""


class ContentFlagged(GenerationFailed):
    """fal flagged the output (``has_nsfw_concepts``); the files are quarantined."""
