"""What happens to one accepted job off the event loop: fetch its inputs, render it
with the local renderer (``fal_assets.jobs.run_job``), flag it, price it."""

from __future__ import annotations

import io
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse

from ..errors import GenerationFailed, InvalidInput
from ..media import read_local

log = logging.getLogger("fal_assets.emulator")

Fetch = Callable[[str], tuple[bytes, str]]


@dataclass
class Outcome:
    """A finished job: fal's result without URLs plus its files, or an error answer."""

    result: dict[str, Any] | None = None
    files: list[tuple[bytes, str, str]] = field(default_factory=list)  # (data, content type, name)
    slots: list[tuple[str, ...]] = field(default_factory=list)
    cost_usd: float = 0.0
    priced: bool = False
    inference_time: float = 0.0
    error: str | None = None
    error_type: str | None = None
    error_status: int = 0
    error_body: dict[str, Any] | None = None


def field_loc(field_path: str) -> list[str | int]:
    """``arguments.loras[0].path`` or ``arguments.loras.0.path`` -> ``["body", "loras", 0, "path"]``."""
    parts: list[str | int] = ["body"]
    if not field_path.startswith("arguments"):
        return parts  # not an argument (e.g. an unknown endpoint): the body as a whole
    path = field_path.removeprefix("arguments").lstrip(".")
    for token in re.findall(r"[^.\[\]]+", path):
        parts.append(int(token) if token.isdigit() else token)
    return parts


def unprocessable_body(error: InvalidInput) -> dict[str, Any]:
    """fal's 422 body (FastAPI style) for a validation error."""
    return {
        "detail": [
            {"loc": field_loc(p.field), "msg": p.message, "type": "value_error"} for p in error.problems
        ]
    }


def input_fields(arguments: dict[str, Any]) -> dict[str, list[str | int]]:
    """Every input file URL in a request and the ``loc`` it sits at."""
    found: dict[str, list[str | int]] = {}
    for index, url in enumerate(arguments.get("image_urls") or []):
        found.setdefault(url, ["body", "image_urls", index])
    for name in ("image_url", "image_data_url"):
        if isinstance(arguments.get(name), str):
            found.setdefault(arguments[name], ["body", name])
    for index, lora in enumerate(arguments.get("loras") or []):
        if isinstance(lora, dict) and isinstance(lora.get("path"), str):
            found.setdefault(lora["path"], ["body", "loras", index, "path"])
    return found


class MediaStore:
    """Result files held in memory, served at ``/_media/<request id>/<name>``."""

    def __init__(self, local_hosts: set[str]):
        self.local_hosts = local_hosts  # "host:port" strings that mean this emulator
        self._files: dict[str, tuple[bytes, str]] = {}

    def put(self, path: str, data: bytes, content_type: str) -> None:
        self._files[path] = (data, content_type)

    def get(self, path: str) -> tuple[bytes, str] | None:
        return self._files.get(path)

    def clear(self) -> None:
        self._files.clear()

    def fetch(self, url: str) -> tuple[bytes, str]:
        """Bytes of a data URI, a local file or ``file://`` URL, or one of our media URLs."""
        try:
            local = read_local(url)
        except OSError as exc:
            raise GenerationFailed(f"cannot read {short(url)}: {exc.strerror or exc}") from exc
        if local is not None:
            return local
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https") and parsed.netloc in self.local_hosts:
            found = self.get(parsed.path)
            if found is None:
                raise GenerationFailed(f"{short(url)}: no such media on this emulator (reset, or from an earlier run)")
            return found
        raise GenerationFailed(
            f"{short(url)}: the emulator reads only data: URIs, local files, file:// URLs and its own /_media URLs"
        )


def short(url: str) -> str:
    """A URL fit for a message: data URIs can be megabytes long."""
    return url if len(url) <= 80 else url[:60] + "..."


def _blacken(data: bytes, content_type: str) -> bytes:
    """A black image of the same size and format: what fal returns for flagged output."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        size, fmt, mode = image.size, image.format or "PNG", image.mode
    black = Image.new("RGBA" if mode == "RGBA" else "RGB", size, (0, 0, 0))
    buffer = io.BytesIO()
    black.save(buffer, format=fmt)
    return buffer.getvalue()


def execute(
    endpoint: str,
    arguments: dict[str, Any],
    *,
    fetch: Fetch,
    run_job: Callable[[str, dict[str, Any], Fetch], Any],
    estimate: Callable[..., Any],
    nsfw: bool = False,
) -> Outcome:
    """Render one job (in a worker thread) and price it; errors become fal's error answers."""
    cache: dict[str, tuple[bytes, str]] = {}
    locs = input_fields(arguments)

    failed: list[str] = []

    def cached_fetch(url: str) -> tuple[bytes, str]:
        if url not in cache:
            try:
                cache[url] = fetch(url)
            except GenerationFailed:
                failed.append(url)
                raise
        return cache[url]

    started = time.perf_counter()
    try:
        output = run_job(endpoint, arguments, cached_fetch)
    except GenerationFailed as exc:
        loc = locs.get(failed[-1], ["body"]) if failed else ["body"]
        return _failed(422, "file_download_error", str(exc), loc=loc)
    except InvalidInput as exc:
        return Outcome(
            error=str(exc), error_type="validation_error", error_status=422, error_body=unprocessable_body(exc)
        )
    except ValueError as exc:  # the renderer refused the inputs (e.g. no figure in an edit's image)
        return _failed(422, "value_error", str(exc), loc=["body"])
    except Exception as exc:  # a renderer bug: fal answers 500 and does not bill
        log.exception("render failed for %s", endpoint)
        return _failed(500, "internal_error", f"{type(exc).__name__}: {exc}")
    inference_time = time.perf_counter() - started

    result, files = output.result, list(output.files)
    if nsfw and "images" in result:
        files = [
            (_blacken(data, ctype), ctype, name) if ctype.startswith("image/") else (data, ctype, name)
            for data, ctype, name in files
        ]
        result["has_nsfw_concepts"] = [True] * len(result["images"])
    if "images" in result:
        result["timings"] = {**(result.get("timings") or {}), "inference": inference_time}

    cost, priced = _price(endpoint, arguments, estimate, cache)
    return Outcome(
        result=result,
        files=files,
        slots=list(output.slots),
        cost_usd=cost,
        priced=priced,
        inference_time=inference_time,
    )


def _price(endpoint: str, arguments: dict[str, Any], estimate, cache) -> tuple[float, bool]:
    from ..jobs import input_urls
    from ..media import image_size_of

    try:
        sizes = [image_size_of(cache[url][0]) for url in input_urls(arguments) if url in cache]
        return float(estimate(endpoint, arguments, input_sizes=sizes or None, count=1).cost_usd), True
    except InvalidInput as exc:
        log.warning("no price known for %s, billed $0: %s", endpoint, exc)
        return 0.0, False


def _failed(status: int, error_type: str, message: str, loc: list[str | int] | None = None) -> Outcome:
    if loc is not None:
        body: dict[str, Any] = {"detail": [{"loc": loc, "msg": message, "type": error_type}]}
    else:
        body = {"detail": message, "error_type": error_type}
    return Outcome(error=message, error_type=error_type, error_status=status, error_body=body)
