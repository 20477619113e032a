"""The code location: assets, checks, jobs, schedules, sensors and resources.

The partitions come from the character specs in ``$FAL_ASSETS_CHARACTERS`` (default
``characters``) as they are when this module loads; ``build_defs`` makes the same for
any folder (the demo, the backfill command and the tests use it).
"""

from __future__ import annotations

import os
import warnings

import dagster as dg

from fal_assets.spec import scan_specs

from . import animation_assets, assets, checks, schedules, sensors, variant_assets
from .partitions import LibraryPartitions
from .variant_partitions import VariantPartitions
from .resources import CharacterLibrary, CutoutResource, FalResource, StoreResource

# Dagster marks some APIs we rely on (backfill policies, partitioned checks) as beta/preview.
warnings.filterwarnings("ignore", message=r".*currently in (beta|preview)")

FOLDER_ENV = "FAL_ASSETS_CHARACTERS"
STORE_URL_ENV = "FAL_ASSETS_STORE_URL"
EXECUTOR_ENV = "FAL_ASSETS_EXECUTOR"


def fal_resource() -> FalResource:
    """The key (and a journal URL with its password) only ever travel as ``dg.EnvVar``:
    Dagster resolves them at run time and never writes them to run config or the event log."""
    options = {}
    if os.environ.get("FAL_KEY"):
        options["api_key"] = dg.EnvVar("FAL_KEY")
    if os.environ.get("FAL_ASSETS_JOURNAL_URL"):
        options["journal_url"] = dg.EnvVar("FAL_ASSETS_JOURNAL_URL")
    if os.environ.get(STORE_URL_ENV):
        options["store_url"] = os.environ[STORE_URL_ENV]
    return FalResource(**options)


def store_resource() -> StoreResource:
    """Files in ``output/``; with ``$FAL_ASSETS_STORE_URL`` (``s3://bucket/prefix``) in the store
    by URL that every worker shares, ``output/`` being only this machine's working copy."""
    return StoreResource(url=os.environ.get(STORE_URL_ENV) or None)


def executor():
    """``$FAL_ASSETS_EXECUTOR=celery``: every step goes to a Celery worker (dagster-celery),
    through the broker in ``$CELERY_BROKER_URL`` and results in ``$CELERY_RESULT_BACKEND``."""
    if os.environ.get(EXECUTOR_ENV, "") != "celery":
        return None
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {"broker": {"env": "CELERY_BROKER_URL"}, "backend": {"env": "CELERY_RESULT_BACKEND"}}, name="celery")


def library_partitions(folder: str, allow_references_outside: bool = False) -> LibraryPartitions:
    """The partitions of the specs in ``folder`` that load cleanly (the sensor reports the others)."""
    specs, _ = scan_specs(folder, allow_references_outside=allow_references_outside)
    return LibraryPartitions.of_specs(specs)


def build_defs(folder: str | None = None, resources: dict | None = None, reload=None) -> dg.Definitions:
    """Everything for the specs in ``folder``; ``resources`` replace the defaults by key
    (a ``characters`` resource given here also decides which specs load into partitions)."""
    folder = folder or os.environ.get(FOLDER_ENV, "characters")
    library = (resources or {}).get("characters")
    parts = library_partitions(folder, bool(getattr(library, "allow_references_outside", False)))
    variants = VariantPartitions.of_folder(folder, bool(getattr(library, "allow_references_outside", False)))
    sensor = sensors.build(parts) if reload is None else sensors.build(parts, reload=reload)
    animated, animation_checks = animation_assets.build(folder)
    return dg.Definitions(
        assets=[*assets.build(parts), *variant_assets.build(variants), *animated],
        asset_checks=[*checks.build(parts), *variant_assets.checks(variants), *animation_checks],
        jobs=schedules.JOBS,
        schedules=schedules.build(parts),
        sensors=[sensor],
        executor=executor(),
        resources={
            "fal": fal_resource(),
            "store": store_resource(),
            "cutout": CutoutResource(),
            "characters": CharacterLibrary(folder=folder),
            **(resources or {}),
        },
    )


def graph(defs: dg.Definitions) -> list:
    """The assets and checks of ``defs``, for ``dg.materialize``."""
    return [*defs.assets, *defs.asset_checks]


defs = build_defs()
