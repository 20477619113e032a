"""The code location: assets, checks, jobs, schedules, sensors and resources."""

import os

import dagster as dg

from . import assets, checks, schedules, sensors
from .resources import CharacterLibrary, CutoutResource, FalResource, StoreResource


def fal_resource() -> FalResource:
    """The key (and a journal URL with its password) only ever travel as ``dg.EnvVar``:
    Dagster resolves them at run time and never writes them to run config or the event log."""
    options = {}
    if os.environ.get("FAL_KEY"):
        options["api_key"] = dg.EnvVar("FAL_KEY")
    if os.environ.get("FAL_ASSETS_JOURNAL_URL"):
        options["journal_url"] = dg.EnvVar("FAL_ASSETS_JOURNAL_URL")
    return FalResource(**options)


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
