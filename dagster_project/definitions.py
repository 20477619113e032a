"""The code location: assets, checks, resources (and, later, sensors and schedules)."""

import os

import dagster as dg

from . import assets, checks
from .resources import CharacterLibrary, CutoutResource, FalResource, StoreResource


def fal_resource() -> FalResource:
    """The key only ever travels as ``dg.EnvVar``: Dagster resolves it at run time and
    never writes it to run config or the event log."""
    if os.environ.get("FAL_KEY"):
        return FalResource(api_key=dg.EnvVar("FAL_KEY"))
    return FalResource()


defs = dg.Definitions(
    assets=assets.ALL,
    asset_checks=checks.ALL,
    resources={
        "fal": fal_resource(),
        "store": StoreResource(),
        "cutout": CutoutResource(),
        "characters": CharacterLibrary(),
    },
)
