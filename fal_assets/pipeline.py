"""The pipeline's stages as plain functions, one per asset.

Each takes a character spec, where to write, and (for paid stages) a ``generate``
callable that runs a list of requests and returns each ``Generation`` or its error.
The Dagster layer passes its fal resource here; tests and scripts pass
``generate.generate_all`` with settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import atomic, references
from .dataset import DatasetImage, DatasetReport, build_dataset
from .errors import GenerationFailed, InvalidInput
from .generate import Generation, Request
from .prompts import caption
from .recipes import pose_request, reference_request, training_request
from .spec import CharacterSpec

Generate = Callable[[list[Request]], list["Generation | BaseException"]]
IMAGE_SUFFIXES = references.IMAGE_SUFFIXES


def _ok(outcomes: list[Generation | BaseException], what: str) -> list[Generation]:
    """Every outcome, or one error naming every failure (successes stay journaled)."""
    failures = [f"{what}: {type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
    if failures:
        raise GenerationFailed("\n".join(failures))
    return list(outcomes)  # type: ignore[arg-type]


def _copy(source: Path, target: Path) -> Path:
    """Place a stored file at its output path atomically (skip if already identical)."""
    if target.exists() and target.stat().st_size == source.stat().st_size and target.read_bytes() == source.read_bytes():
        return target
    return atomic.write_bytes(target, source.read_bytes())


@dataclass
class References:
    folder: Path
    images: dict[str, Path]  # view -> file
    generations: dict[str, Generation] = field(default_factory=dict)
    source: str = "generated"

    @property
    def cost_usd(self) -> float:
        return sum(g.cost_usd for g in self.generations.values())


def reference_images(spec: CharacterSpec, folder: Path, generate: Generate) -> References:
    """The dataset's images: the user's own folder when the spec names one, else one
    generated image per view (front, side, three-quarter, close-up, expressions...)."""
    folder = Path(folder)
    if spec.references_path is not None:
        problems = references.check(spec)  # confined, readable, images that decode, sizes, count
        if problems:
            raise InvalidInput(problems)
        found = references.image_files(spec.references_path)
        images = {p.stem: _copy(p, folder / p.name) for p in found}
        remove_stale(folder, set(images.values()))
        return References(folder, images, source=str(spec.references_path))
    views = list(spec.views)
    outcomes = _ok(generate([reference_request(spec, view) for view in views]), f"{spec.name} reference")
    images, generations = {}, {}
    for view, generation in zip(views, outcomes):
        stored = generation.paths[0]
        images[view] = _copy(stored, folder / f"{view}{stored.suffix}")
        generations[view] = generation
    remove_stale(folder, set(images.values()))  # the dataset zips this folder
    return References(folder, images, generations)


def training_dataset(spec: CharacterSpec, references: dict[str, Path], out_zip: Path) -> DatasetReport:
    """Zip the references with a caption (trigger word included) beside each."""
    items = [
        DatasetImage(name, Path(path), caption(spec, name if name in spec.views else next(iter(spec.views))))
        for name, path in sorted(references.items())
    ]
    return build_dataset(items, spec.trigger_word, Path(out_zip), where=f"{spec.name} training_dataset")


@dataclass
class Lora:
    weights: Path
    config: Path | None
    generation: Generation

    @property
    def lora_url(self) -> str | None:
        item = self.generation.result.get("diffusers_lora_file", {})
        return item.get("url") or item.get("url_expired")


def character_lora(spec: CharacterSpec, dataset_zip: Path, folder: Path, generate: Generate) -> Lora:
    """Train the LoRA and keep the weights file itself (fal's URLs do not last)."""
    (generation,) = _ok(generate([training_request(spec, dataset_zip)]), f"{spec.name} LoRA training")
    by_slot = {f.get("slot"): Path(f["path"]) for f in generation.files}
    weights = by_slot.get("diffusers_lora_file")
    if weights is None:
        raise GenerationFailed(f"{spec.name}: the trainer returned no diffusers_lora_file")
    kept = _copy(weights, Path(folder) / "pytorch_lora_weights.safetensors")
    config = by_slot.get("config_file")
    kept_config = _copy(config, Path(folder) / "config.json") if config else None
    return Lora(kept, kept_config, generation)


@dataclass
class PoseImage:
    pose: str
    path: Path
    generation: Generation
    prompt: str


def pose_images(
    spec: CharacterSpec, poses: list[str], lora_weights: Path | None, folder: Path, generate: Generate, profile: str = "final"
) -> dict[str, PoseImage | BaseException]:
    """One image per pose, fanned out together; each pose's image or its error."""
    requests = [pose_request(spec, pose, lora_weights, profile) for pose in poses]
    out: dict[str, PoseImage | BaseException] = {}
    for pose, request, outcome in zip(poses, requests, generate(requests)):
        if isinstance(outcome, BaseException):
            out[pose] = outcome
            continue
        stored = outcome.paths[0]
        out[pose] = PoseImage(pose, _copy(stored, Path(folder) / f"{pose}{stored.suffix}"), outcome, request.arguments["prompt"])
    return out


@dataclass
class Sprite:
    pose: str
    path: Path
    method: str
    details: dict


def cutout_key(source: bytes, cutter) -> str:
    """What decides a cutout: the source image's bytes, the cutter's method and settings,
    and the cutting code itself (a new keying rule cuts again)."""
    import hashlib
    import json

    from . import cutout, enclosed

    code = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (cutout, enclosed))).hexdigest()
    settings = json.dumps({"method": cutter.method, **cutter.describe(), "code": code}, sort_keys=True, default=str)
    return hashlib.sha256(hashlib.sha256(source).digest() + settings.encode()).hexdigest()


def sprite(image_path: Path, out_path: Path, cutter) -> Sprite:
    """Cut the background out of one pose image, or reuse the cutout made from the same
    image with the same cutter (recorded beside it in ``<pose>.cut.json``)."""
    import json

    from PIL import Image

    out_path = Path(out_path)
    source = Path(image_path).read_bytes()
    key = cutout_key(source, cutter)
    record = out_path.with_name(f"{out_path.stem}.cut.json")
    if out_path.is_file() and record.is_file():
        try:
            kept = json.loads(record.read_text())
        except (ValueError, OSError):
            kept = {}
        if kept.get("key") == key:
            return Sprite(out_path.stem, out_path, kept["method"], {**kept["details"], "cache_hit": True})
    with Image.open(image_path) as image:
        result = cutter.cut(image.convert("RGB"))
    atomic.save_image(out_path, result.image)
    details = {k: v for k, v in result.details.items()
               if isinstance(v, (str, int, float, bool, type(None), list)) and k != "rembg_import_s"}  # paid once, by this cut
    atomic.write_json(record, {"key": key, "method": result.method, "details": details})
    return Sprite(out_path.stem, out_path, result.method, {**dict(result.details), "cache_hit": False})


def remove_stale(folder: Path, keep: set[Path]) -> list[Path]:
    """Delete files in ``folder`` that are not in ``keep``: a renamed or removed view, a
    file left under another suffix. (A stale reference image would be trained into the LoRA.)"""
    kept = {Path(p).resolve() for p in keep}
    removed = [p for p in Path(folder).iterdir() if p.is_file() and p.resolve() not in kept] if Path(folder).is_dir() else []
    for path in removed:
        path.unlink()
    return removed
