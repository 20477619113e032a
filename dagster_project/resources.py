"""Resources: ``fal`` (generation), ``store`` (where files go), ``cutout`` (rembg or keying),
``characters`` (the spec library). Secrets come only through ``dg.EnvVar``."""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from fal_assets import bounded
from fal_assets.budget import Budget
from fal_assets.generate import Generation, Request, Settings, generate_all
from fal_assets.spec import CharacterSpec, load_spec, scan_specs


class FalResource(dg.ConfigurableResource):
    """Runs fal requests through the journal: never pays twice, resumes after a crash.

    ``backend``: ``auto`` (fal when a key is set, else the offline local renderer),
    ``local`` or ``fal`` (which talks to whatever ``FAL_QUEUE_RUN_HOST`` names: fal.ai
    or our emulator). The key is only ever ``dg.EnvVar("FAL_KEY")``.
    """

    backend: str = Field("auto", description="auto, local or fal")
    api_key: Optional[str] = Field(None, description="set only as dg.EnvVar('FAL_KEY')")
    concurrency: int = Field(2, ge=1, le=40, description="requests in flight per process (fal: 2 for new accounts, up to 40)")
    workdir: str = Field(".fal-assets", description="folder for the journal and the content store")
    journal_url: Optional[str] = Field(None, description="database URL for the journal (default: SQLite in workdir)")
    store_url: Optional[str] = Field(
        None, description="fsspec URL of the content store (s3://bucket/prefix); default: workdir/store, which then is only a cache")
    budget_per_run_usd: Optional[float] = Field(None, description="cap on billed dollars per Dagster run")
    budget_per_period_usd: Optional[float] = Field(None, description="cap on billed dollars per period")
    budget_period: str = Field("month", description="day, week or month")
    poll_interval: float = Field(0.1, description="seconds between status polls")
    call_timeout: float = Field(30.0, description="timeout of each HTTP call, seconds")
    resubmit_in_doubt: bool = Field(True, description="send again (once) a submit whose answer was lost; False: stop and ask")
    resend_in_doubt_below_usd: float = Field(
        1.0, ge=0, description="requests estimated at or above this (and all training) are never resent on doubt")
    wait_timeout: float = Field(1800.0, gt=0, description="seconds to wait for an image request to complete")
    training_wait_timeout: float = Field(
        7200.0, gt=0, description="seconds to wait for a training (1000 FLUX.2 steps take ~21 min plus queue)")

    @property
    def chosen_backend(self) -> str:
        if self.backend == "auto":
            return "fal" if self.api_key else "local"
        return self.backend

    @property
    def key(self) -> str | None:
        return _resolved(self.api_key)

    def settings(self, run_id: str | None = None) -> Settings:
        return Settings(
            backend=self.chosen_backend,
            journal_url=_resolved(self.journal_url),
            store_root=Path(self.workdir) / "store",
            store_url=self.store_url,
            concurrency=self.concurrency,
            budget=Budget(self.budget_per_run_usd, self.budget_per_period_usd, self.budget_period),
            poll_interval=self.poll_interval,
            call_timeout=self.call_timeout,
            resubmit_in_doubt=self.resubmit_in_doubt,
            resend_in_doubt_below_usd=self.resend_in_doubt_below_usd,
            wait_timeout=self.wait_timeout,
            training_wait_timeout=self.training_wait_timeout,
            run_id=run_id,
        )

    def generate(self, context: dg.AssetExecutionContext, requests: list[Request]) -> list[Generation | BaseException]:
        """Fan the requests out concurrently; each result or its error, in order."""
        for request in requests:
            request.labels.setdefault("run_id", context.run.run_id)
        return generate_all(
            requests,
            self.settings(context.run.run_id),
            key=self.key,
            on_event=context.log.info,
            # each request's routine progress: many lines per run, each a Dagster event
            # (10-25 ms apiece on SQLite, written while the fan-out waits), so they go to
            # the step's captured stderr (the run page's "stderr" tab) instead
            on_progress=lambda line: print(line, file=sys.stderr, flush=True),
        )


def _resolved(value: str | None) -> str | None:
    """A field's value: Dagster resolves ``dg.EnvVar`` inside a run; outside one (the
    backfill command, a dry run) the field still holds the variable's name."""
    if isinstance(value, dg.EnvVar):
        return value.get_value()
    return value


class StoreResource(dg.ConfigurableResource):
    """Where the stages' files go: ``output/<character>/...`` by default, and copied to
    object storage by URL (``publish_url``, e.g. ``s3://bucket/fal-assets``) when set.

    With ``url`` (the store by URL, e.g. ``s3://bucket/fal-assets``), ``root`` is this
    machine's working copy only: a stage ``pull``s what it reads from the store and
    ``push``es what it wrote, so steps on machines with no shared disk see each other's
    files. Without it both are no-ops and the folder is the only copy (``make demo``)."""

    root: str = Field("output", description="folder for the stages' files (the working copy)")
    publish_url: Optional[str] = Field(None, description="fsspec URL the finished files are copied to")
    url: Optional[str] = Field(None, description="fsspec URL of the store every worker shares (s3://bucket/prefix)")
    cache: str = Field(".fal-assets/store", description="this machine's cache of the store's files, by content hash")

    def path(self, character: str, *parts: str) -> Path:
        return Path(self.root) / character / Path(*parts)

    def pull(self, character: str, *parts: str) -> Path:
        """``path(...)``, first made what the store holds there (a file or a folder)."""
        path = self.path(character, *parts)
        working = self._working_copy()
        if working is not None:
            working.pull(Path(character, *parts).as_posix())
        return path

    def push(self, *files: Path, exact: bool = False) -> dict:
        """Store files (or folders) this step wrote, for the steps on other machines;
        ``exact``: the store's folder then holds only these. Metadata: their URLs."""
        working = self._working_copy()
        if working is None:
            return {}
        urls = working.push(files, exact=exact)
        return {"stored": dg.MetadataValue.json(urls)} if urls else {}

    def _working_copy(self):
        if not self.url:
            return None
        from fal_assets.remote_store import RemoteStore, WorkingCopy

        return WorkingCopy(self.root, RemoteStore(self.url, self.cache))

    def publish(self, *files: Path) -> dict:
        """Metadata for the published copies (nothing when no URL is set)."""
        if not self.publish_url:
            return {}
        from fal_assets.publish import publish

        return {"published": dg.MetadataValue.json(publish(list(files), Path(self.root), self.publish_url))}


class CutoutResource(dg.ConfigurableResource):
    """Background removal: rembg with a model name or a custom ONNX path, or keying of
    flat backgrounds (``auto`` picks rembg when its model is present)."""

    method: str = Field("auto", description="auto, rembg or key")
    model: str = Field("isnet-anime", description="rembg model name")
    model_path: Optional[str] = Field(None, description="a custom ONNX model under U2NET_HOME")
    alpha_matting: bool = Field(False, description="rembg alpha matting (slower; may leave grey fringes)")

    def cutter(self):
        return _cutter(self.method, self.model, self.model_path, self.alpha_matting)


@functools.lru_cache(maxsize=4)
def _cutter(method: str, model: str, model_path: str | None, alpha_matting: bool):
    """One cutter (one rembg session) per process."""
    from fal_assets.cutout import make_cutter

    return make_cutter(method, model=model, model_path=model_path, rembg_options={"alpha_matting": alpha_matting} if alpha_matting else None)


@functools.lru_cache(maxsize=4096)
def _load_spec(path: str, digest: str, allow_references_outside: bool) -> CharacterSpec:
    return load_spec(path, allow_references_outside=allow_references_outside)


def cached_load_spec(path, allow_references_outside: bool = False) -> CharacterSpec:
    """``load_spec``, parsed once per process for each content of the file (hashing
    the bytes is cheap, parsing is not; a modification time can repeat within a few ms):
    a sensor tick over an unchanged library parses nothing."""
    try:
        if Path(path).stat().st_size > bounded.MAX_TEXT_BYTES["character spec"]:
            return load_spec(path)  # refuses it before reading it
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return load_spec(path)  # says what is wrong with the file, in one line
    return _load_spec(str(path), digest, bool(allow_references_outside))


class CharacterLibrary(dg.ConfigurableResource):
    """The folder of character specs; partition keys come from it."""

    folder: str = Field("characters", description="folder of character spec YAML files")
    allow_references_outside: bool = Field(
        False,
        description="let a spec's references_dir (and its images) resolve outside the spec's own folder tree; "
        "off by default, because those files are copied into the output and uploaded to fal",
    )

    def spec(self, character: str) -> CharacterSpec:
        """The spec named ``character``: parsed once per process for each version of
        its file (path, modification time and size), not once per partition."""
        for suffix in (".yaml", ".yml"):
            path = Path(self.folder) / f"{character}{suffix}"
            if path.is_file():
                return cached_load_spec(path, self.allow_references_outside)
        specs, _ = self.scan()
        if character in specs:
            return specs[character]
        raise dg.Failure(f"{self.folder}: no character spec named {character!r}")

    def scan(self):
        return scan_specs(self.folder, loader=functools.partial(cached_load_spec, allow_references_outside=self.allow_references_outside))
