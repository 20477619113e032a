"""The code location: assets, checks, jobs, schedules, sensors and resources."""

import os

import dagster as dg

from . import assets, checks, schedules, sensors
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
    jobs=schedules.JOBS,
    schedules=schedules.SCHEDULES,
    sensors=sensors.SENSORS,
    resources={
        "fal": fal_resource(),
        "store": StoreResource(),
        "cutout": CutoutResource(),
        "characters": CharacterLibrary(),
    },
)
