"""Animated sprites: the frames of a character's animations, through the journal.

An animation (``animations:`` in the spec) is made from its base pose's image by one of
two methods:

- ``keyframes``: one request per frame to an identity-keeping edit endpoint (default
  ``fal-ai/flux-2/lora/edit`` with the character's LoRA; ``fal-ai/flux-2/flash/edit``
  for a spec without one). Each frame's inputs are the base pose image and, with
  ``chain`` (the default), the previous frame; the prompt names the frame's phase in
  the cycle; each frame's seed is pinned (``spec.seed_for_frame``). A chain is
  sequential inside one animation; the animations of one run advance side by side,
  one wave of requests per frame index. ``chain: false`` sends every frame at once.
- ``video``: one image-to-video request (default Kling 2.5 turbo pro, whose
  ``tail_image_url`` makes a loop end on its first frame), then ``frames`` frames
  sampled evenly in time from the clip (decoded with PyAV).

Every request is estimated before anything is sent: an unpriced endpoint is refused
with one line, and ``preflight`` (a budget check) sees the whole batch's estimate
first. Each request then goes through the caller's ``generate`` (validate, journal,
budget, submit, store): nothing is paid twice and a rerun costs $0. Each frame records
its seed, request id and cost; a video clip's cost is shared evenly by its frames.

This module never imports dagster.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from . import atomic
from .catalog import load_catalog
from .errors import BudgetExceeded, GenerationFailed, InvalidInput, Problem
from .generate import Generation, Request, set_path
from .pricing import estimate
from .spec import Animation, CharacterSpec, pose_version, spec_version

KEYFRAMES_LORA_ENDPOINT = "fal-ai/flux-2/lora/edit"
KEYFRAMES_ENDPOINT = "fal-ai/flux-2/flash/edit"
VIDEO_ENDPOINT = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
VIDEO_DURATION = "5"
KEEP = "Keep the character, outfit, colors, proportions, camera and framing of the reference images"
FRAMES_MANIFEST = "frames.json"

Generate = Callable[[list[Request]], list["Generation | BaseException"]]
Preflight = Callable[[float, str], None]
Lookup = Callable[[Request], "Path | None"]
"""The stored output of a request the journal holds as completed, else None (sends nothing)."""


# --------------------------------------------------------------------------- endpoints


def endpoint_for(spec: CharacterSpec, name: str) -> str:
    """The endpoint animation ``name`` is sent to (its own, else its method's default)."""
    animation = spec.animation(name)
    if animation.endpoint:
        return load_catalog().canonical(animation.endpoint) if animation.endpoint in load_catalog() else animation.endpoint
    if animation.method == "video":
        return VIDEO_ENDPOINT
    return KEYFRAMES_LORA_ENDPOINT if spec.uses_lora else KEYFRAMES_ENDPOINT


def endpoint_problems(spec: CharacterSpec) -> list[Problem]:
    """Each animation's endpoint fits its method (an edit endpoint taking two images for a
    chained keyframe, an image-to-video one for video); the spec's file and field named."""
    catalog = load_catalog()
    where = str(spec.source or spec.name)
    problems = []
    for name, animation in spec.animations.items():
        endpoint = endpoint_for(spec, name)
        field_name = f"animations.{name}.endpoint"
        if endpoint not in catalog:
            problems.append(Problem(where, field_name, f"{endpoint} is not in the catalog; `fal-assets models` lists the endpoints it knows"))
            continue
        entry = catalog.get(endpoint)
        if animation.method == "video":
            if entry.output_kind != "video":
                problems.append(Problem(where, field_name, f"{endpoint} makes {entry.output_kind}s, not video; use an image-to-video endpoint (e.g. {VIDEO_ENDPOINT})"))
            continue
        taken = entry.image_input
        if entry.output_kind != "image" or taken is None or taken.key != "image_urls":
            problems.append(Problem(where, field_name, f"{endpoint} is not an edit endpoint taking image_urls; use e.g. {KEYFRAMES_LORA_ENDPOINT} or {KEYFRAMES_ENDPOINT}"))
        elif animation.chain and taken.max is not None and taken.max < 2:
            problems.append(Problem(where, field_name, f"{endpoint} takes {taken.max} input image; a chained keyframe sends two (base pose and previous frame): set chain: false"))
    return problems


# --------------------------------------------------------------------------- prompts


def _clause(text: str) -> str:
    """Motion text inside one prompt clause (its own ';' and '.' would end the clause)."""
    return " ".join(text.replace(";", ",").replace(". ", ", ").split()).rstrip(" .,")


def frame_phase(animation: Animation, index: int) -> float:
    """Where frame ``index`` lies in the cycle: a loop's frames split it evenly (the frame
    after the last is the first again); a one-shot runs from start to end inclusive."""
    if animation.loop:
        return index / animation.frames
    return index / (animation.frames - 1)


def _parts(spec: CharacterSpec, name: str, lora: bool) -> tuple[list[str], str, list[str]]:
    from .prompts import _action, _sentence, _subject

    base = spec.animation_pose(name)
    return _subject(spec, lora), _sentence(f"Pose: {_action(spec.pose(base).description)}"), [
        _sentence(f"Style: {spec.style}"),
        _sentence(spec.background),
    ]


def frame_prompt(spec: CharacterSpec, name: str, index: int, *, lora: bool = False) -> str:
    """Frame ``index``'s prompt: Subject -> the base pose -> the motion and this frame's
    phase -> keep everything else of the references -> Style -> Context."""
    animation = spec.animation(name)
    subject, pose, tail = _parts(spec, name, lora)
    kind = "looping cycle" if animation.loop else "motion played once"
    motion = (f"Motion: {_clause(animation.motion)}, frame {index + 1} of {animation.frames} of a {kind}, "
              f"cycle phase {frame_phase(animation, index):.3f}.")
    return " ".join([*subject, pose, motion, f"{KEEP}.", *tail])


def video_prompt(spec: CharacterSpec, name: str) -> str:
    """The clip's prompt: the motion as one cycle over the whole clip, in place, camera fixed."""
    animation = spec.animation(name)
    subject, pose, tail = _parts(spec, name, lora=False)
    ends = "that ends exactly as it began" if animation.loop else "played once"
    motion = f"Motion: {_clause(animation.motion)}, one cycle over the whole clip {ends}, the character stays in place, camera fixed."
    return " ".join([*subject, pose, motion, *tail])


# --------------------------------------------------------------------------- requests


def _labels(spec: CharacterSpec, name: str, **more: str) -> dict[str, str]:
    return {"character": spec.name, "animation": name, "pose": spec.animation_pose(name), "asset": "animation_frames", **more}


def frame_request(
    spec: CharacterSpec,
    name: str,
    index: int,
    base_image: Path,
    previous: Path | None,
    lora_weights: Path | None,
    profile: str = "final",
) -> Request:
    """Keyframe ``index``: an edit of the base pose image (and the previous frame)."""
    endpoint = endpoint_for(spec, name)
    entry = load_catalog().get(endpoint)
    use_lora = entry.lora is not None and lora_weights is not None and spec.uses_lora
    arguments = {k: v for k, v in spec.profile(profile).items() if k in entry.params and k != "image_size"}
    arguments.update(prompt=frame_prompt(spec, name, index, lora=use_lora), seed=spec.seed_for_frame(name, index), image_urls=[])
    files = {"image_urls.0": Path(base_image)}
    if previous is not None:
        files["image_urls.1"] = Path(previous)
    if use_lora:
        arguments["loras"] = [{"path": "", "scale": spec.training.lora_scale}]
        files["loras.0.path"] = Path(lora_weights)
    return Request(endpoint, arguments, files=files, labels=_labels(spec, name, frame=f"{index:03d}", profile=profile))


def video_request(spec: CharacterSpec, name: str, base_image: Path) -> Request:
    """The one image-to-video request; a loop ends on its base pose where the endpoint allows."""
    endpoint = endpoint_for(spec, name)
    entry = load_catalog().get(endpoint)
    arguments: dict[str, Any] = {"prompt": video_prompt(spec, name), "image_url": ""}
    if "duration" in entry.params:
        arguments["duration"] = VIDEO_DURATION
    files = {"image_url": Path(base_image)}
    if spec.animation(name).loop and "tail_image_url" in entry.params:
        arguments["tail_image_url"] = ""
        files["tail_image_url"] = Path(base_image)
    return Request(endpoint, arguments, files=files, labels=_labels(spec, name, frame="clip"))


# --------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class AnimationEstimate:
    """What an animation costs on fal before anything is sent: per request and in all."""

    character: str
    animation: str
    endpoint: str
    method: str
    frames: int
    requests: int
    per_request_usd: tuple[float, ...]
    total_usd: float
    describe: str

    @property
    def per_frame_usd(self) -> float:
        return round(self.total_usd / self.frames, 6)


def _image_size(path: Path | None, fallback: tuple[int, int]) -> tuple[int, int]:
    if path is None or not Path(path).is_file():
        return fallback
    from .media import image_size_of

    return image_size_of(Path(path).read_bytes())


def _priced(request: Request, size: tuple[int, int]) -> Any:
    arguments = copy.deepcopy(request.arguments)
    for path, local in sorted(request.files.items()):
        set_path(arguments, path, f"upload:{Path(local).name}")
    inputs = [size for path in request.files if path.startswith("image_url")]
    if "tail_image_url" in request.files:
        inputs = inputs[:-1]  # the tail image is not an image_input: not counted as one
    return estimate(request.endpoint, arguments, input_sizes=inputs or None)


def estimate_animation(
    spec: CharacterSpec,
    name: str,
    base_image: Path | None = None,
    lora_weights: Path | None = None,
    profile: str = "final",
    *,
    base_size: tuple[int, int] = (768, 1024),
) -> AnimationEstimate:
    """Every request of animation ``name`` priced (a chained frame's previous frame is
    taken at the base image's size). An unpriced endpoint raises ``InvalidInput``."""
    animation = spec.animation(name)
    size = _image_size(base_image, base_size)
    base = Path(base_image or "base.png")
    weights = Path(lora_weights or "pytorch_lora_weights.safetensors")
    if animation.method == "video":
        requests = [video_request(spec, name, base)]
    else:
        requests = [
            frame_request(spec, name, i, base, base if (animation.chain and i) else None, weights, profile)
            for i in range(animation.frames)
        ]
    costs = [_priced(r, size) for r in requests]
    total = round(sum(c.cost_usd for c in costs), 6)
    return AnimationEstimate(
        spec.name, name, requests[0].endpoint, animation.method, animation.frames, len(requests),
        tuple(c.cost_usd for c in costs), total, costs[-1].describe(),
    )


# --------------------------------------------------------------------------- versions


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def frames_version(spec: CharacterSpec, name: str, *, base: str | None = None) -> str:
    """What decides an animation's frames: the character, its base pose image, the motion,
    frame count, loop, method, endpoint, chain and seed; not fps (that is playback)."""
    animation = spec.animation(name)
    pose = spec.animation_pose(name)
    return _digest({
        "spec": base or spec_version(spec),
        "pose": pose_version(spec, pose, base=base),
        "animation": animation.model_dump(exclude={"fps"}),
        "endpoint": endpoint_for(spec, name),
        "prompts": frame_prompt(spec, name, 0) if animation.method == "keyframes" else video_prompt(spec, name),
    })


def export_version(spec: CharacterSpec, name: str, *, base: str | None = None) -> str:
    """What decides an animation's exports: its frames, fps and loop flag."""
    animation = spec.animation(name)
    return _digest({"frames": frames_version(spec, name, base=base), "fps": animation.fps, "loop": animation.loop})


# --------------------------------------------------------------------------- generation


@dataclass
class FrameRecord:
    """One frame: where it is, the seed it was made with, and what its request cost."""

    index: int
    path: Path
    seed: int | None
    request_id: str | None
    cost_usd: float  # billed now (0 on a cache hit or the local backend); a clip's share for video
    estimated_usd: float  # what it costs on fal
    cache_hit: bool
    key: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "file": self.path.name, "seed": self.seed, "request_id": self.request_id,
                "cost_usd": round(self.cost_usd, 6), "estimated_usd": round(self.estimated_usd, 6),
                "cache_hit": self.cache_hit, "key": self.key}


@dataclass
class AnimationFrames:
    """An animation's raw frames (``<folder>/000.png`` ...) and what they cost."""

    character: str
    animation: str
    method: str
    endpoint: str
    folder: Path
    frames: list[FrameRecord]
    generations: list[Generation] = field(default_factory=list)
    clip: Path | None = None
    version: str = ""
    backend: str = ""

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self.frames]

    @property
    def cost_usd(self) -> float:
        """Billed by this materialization: the sum of its requests (cache hits at $0)."""
        return round(sum(g.cost_usd for g in self.generations), 6)

    @property
    def estimated_usd(self) -> float:
        """What the animation costs on fal: the sum of its requests' estimates."""
        return round(sum(float(g.estimate.get("cost_usd") or 0.0) for g in self.generations), 6)

    @property
    def cache_hits(self) -> int:
        return sum(g.cache_hit for g in self.generations)

    def manifest(self) -> dict[str, Any]:
        return {
            "character": self.character, "animation": self.animation, "method": self.method, "endpoint": self.endpoint,
            "version": self.version, "backend": self.backend, "requests": len(self.generations),
            "cost_usd": self.cost_usd, "estimated_usd": self.estimated_usd, "cache_hits": self.cache_hits,
            "clip": self.clip.name if self.clip else None, "frames": [f.to_dict() for f in self.frames],
        }


class _Chain:
    """One animation's requests, wave by wave: a chained keyframe waits for the frame before."""

    def __init__(self, spec: CharacterSpec, name: str, base_image: Path, lora_weights: Path | None, folder: Path, profile: str):
        self.spec, self.name, self.base, self.weights, self.folder, self.profile = spec, name, Path(base_image), lora_weights, Path(folder), profile
        self.animation = spec.animation(name)
        self.outcomes: dict[int, Generation] = {}
        self.error: BaseException | None = None
        self.pending: list[int] = []

    def next_wave(self) -> list[Request]:
        if self.error is not None:
            return []
        a = self.animation
        if a.method == "video":
            self.pending = [] if self.outcomes else [0]
            return [video_request(self.spec, self.name, self.base)] if self.pending else []
        if not a.chain:
            self.pending = [] if self.outcomes else list(range(a.frames))
        else:
            done = len(self.outcomes)
            self.pending = [done] if done < a.frames else []
        requests = []
        for i in self.pending:
            previous = self._frame_path(i - 1) if (a.chain and i) else None
            if previous is not None:
                atomic.write_bytes(previous, self.outcomes[i - 1].paths[0].read_bytes())
            requests.append(frame_request(self.spec, self.name, i, self.base, previous, self.weights, self.profile))
        return requests

    def take(self, outcomes: Sequence[Generation | BaseException]) -> None:
        failures = [f"frame {i:03d}: {type(o).__name__}: {o}" for i, o in zip(self.pending, outcomes) if isinstance(o, BaseException)]
        if failures:
            self.error = GenerationFailed(f"{self.spec.name}/{self.name}: " + "; ".join(failures))
            return
        for i, outcome in zip(self.pending, outcomes):
            self.outcomes[i] = outcome  # type: ignore[assignment]

    def _frame_path(self, index: int) -> Path:
        return self.folder / f"{index:03d}.png"

    def finish(self, backend_label: str | None = None) -> AnimationFrames:
        a = self.animation
        endpoint = endpoint_for(self.spec, self.name)
        generations = [self.outcomes[i] for i in sorted(self.outcomes)]
        records: list[FrameRecord] = []
        clip = None
        if a.method == "video":
            (generation,) = generations
            clip = _copy(generation.paths[0], self.folder / f"clip{generation.paths[0].suffix or '.mp4'}")
            images = sample_frames(clip, a.frames, loop=a.loop)
            share, estimated = generation.cost_usd / a.frames, float(generation.estimate.get("cost_usd") or 0.0) / a.frames
            for i, image in enumerate(images):
                path = atomic.save_image(self._frame_path(i), image)
                records.append(FrameRecord(i, path, None, generation.request_id, share, estimated, generation.cache_hit, generation.key))
        else:
            for i, generation in enumerate(generations):
                path = _copy(generation.paths[0], self._frame_path(i))
                records.append(FrameRecord(i, path, generation.seed, generation.request_id, generation.cost_usd,
                                           float(generation.estimate.get("cost_usd") or 0.0), generation.cache_hit, generation.key))
        keep = {r.path for r in records} | ({clip} if clip else set()) | {self.folder / FRAMES_MANIFEST}
        for stale in self.folder.iterdir():
            if stale.is_file() and stale not in keep:
                stale.unlink()  # a frame beyond a shorter animation, an old clip
        made = AnimationFrames(self.spec.name, self.name, a.method, endpoint, self.folder, records, generations, clip,
                               frames_version(self.spec, self.name), backend_label or (generations[0].backend if generations else ""))
        atomic.write_json(self.folder / FRAMES_MANIFEST, made.manifest())
        return made


def _copy(source: Path, target: Path) -> Path:
    if target.exists() and target.read_bytes() == Path(source).read_bytes():
        return target
    return atomic.write_bytes(target, Path(source).read_bytes())


def animation_frames(
    spec: CharacterSpec,
    names: Iterable[str],
    base_images: dict[str, Path],
    lora_weights: Path | None,
    folders: dict[str, Path],
    generate: Generate,
    profile: str = "final",
    *,
    preflight: Preflight | None = None,
    lookup: Lookup | None = None,
) -> dict[str, AnimationFrames | BaseException]:
    """The frames of each animation in ``names``: every request estimated first (an
    unpriced endpoint refuses that animation before anything is sent), ``preflight``
    (the budget) shown the batch's total, then the requests sent in waves: wave k
    holds frame k of every chained animation and everything that waits on nothing.
    ``base_images`` maps an animation to its base pose image, ``folders`` to where its
    frames go. Each animation's frames, or its error (the others go on)."""
    names = list(dict.fromkeys(names))
    out: dict[str, AnimationFrames | BaseException] = {}
    chains: list[_Chain] = []
    for name in names:
        try:
            spec.animation(name)
            bad = [p for p in endpoint_problems(spec) if p.field == f"animations.{name}.endpoint"]
            if bad:
                raise InvalidInput(bad)
            base = base_images.get(name)
            if base is None or not Path(base).is_file():
                raise GenerationFailed(f"{spec.name}/{name}: no image of its base pose {spec.animation_pose(name)!r} yet ({base}); materialize pose_images first")
            estimate_animation(spec, name, base, lora_weights, profile)  # refuses an unpriced endpoint
        except (InvalidInput, GenerationFailed) as exc:
            out[name] = exc
            continue
        Path(folders[name]).mkdir(parents=True, exist_ok=True)
        chains.append(_Chain(spec, name, base, lora_weights, folders[name], profile))
    if preflight is not None and chains:
        total = sum(to_pay(spec, c.name, c.base, lora_weights, profile, lookup) for c in chains)
        preflight(total, f"{spec.name}: {len(chains)} animation(s) ({', '.join(c.name for c in chains)})")
    while True:
        wave = [(chain, chain.next_wave()) for chain in chains]
        wave = [(chain, requests) for chain, requests in wave if requests]
        if not wave:
            break
        flat = [r for _, requests in wave for r in requests]
        outcomes = generate(flat)
        at = 0
        for chain, requests in wave:
            chain.take(outcomes[at: at + len(requests)])
            at += len(requests)
    for chain in chains:
        if chain.error is not None:
            out[chain.name] = chain.error
            continue
        try:
            out[chain.name] = chain.finish()
        except Exception as exc:  # noqa: BLE001 - a clip that does not decode: this animation fails
            out[chain.name] = exc
    return {name: out[name] for name in names}


def to_pay(
    spec: CharacterSpec, name: str, base_image: Path, lora_weights: Path | None, profile: str = "final", lookup: Lookup | None = None
) -> float:
    """What animation ``name`` still costs on fal: its requests' estimates, less those the
    journal holds as completed (``lookup``). A chain is followed through its cached
    frames (each one's output is the next one's input); from its first uncached frame
    on, every frame counts."""
    animation = spec.animation(name)
    size = _image_size(base_image, (1024, 1024))
    if animation.method == "video":
        request = video_request(spec, name, base_image)
        return 0.0 if lookup and lookup(request) else _priced(request, size).cost_usd
    total, previous = 0.0, None  # previous: a chain's real previous frame, while it is known
    for i in range(animation.frames):
        stand_in = (previous or Path(base_image)) if (animation.chain and i) else None
        request = frame_request(spec, name, i, base_image, stand_in, lora_weights, profile)
        known = lookup is not None and (not animation.chain or i == 0 or previous is not None)
        found = lookup(request) if known else None
        if found is not None:
            previous = found  # the next frame's input is this cached output
            continue
        previous = None  # a chain's later inputs are new: every later frame is paid
        total += _priced(request, size).cost_usd
    return round(total, 6)


@contextlib.contextmanager
def journal_lookup(settings, key: str | None = None):
    """A ``Lookup`` on the journal of ``settings`` (``generate.Settings``): the request's
    key as the generator makes it, its stored file if the journal has it completed."""
    from .backends import make_backend
    from .generate import Generator
    from .journal import State
    from .store import ContentStore

    if settings.journal_url is None and not (settings.store_root.parent / "journal.db").is_file():
        yield lambda request: None
        return
    options = {} if settings.backend == "local" else {"key": key}
    backend = make_backend(settings.backend, **options)
    journal = settings.journal()
    generator = Generator(backend, journal, ContentStore(settings.store_root), settings)

    def lookup(request: Request) -> Path | None:
        if not all(Path(f).is_file() for f in request.files.values()):
            return None
        _, _, journal_key = generator.prepare(request)
        entry = journal.get(journal_key)
        if entry is None or entry.state != State.COMPLETED or not entry.files:
            return None
        path = Path(entry.files[0]["path"])
        return path if path.is_file() else None

    try:
        yield lookup
    finally:
        journal.close()
        asyncio.run(backend.aclose())


def budget_preflight(settings) -> Preflight:
    """A preflight for ``animation_frames``: the whole batch against the ``fal`` resource's
    caps (``generate.Settings``) before the first request is sent; a chain would otherwise
    pay for its first frames before a later one is refused. Only a billed backend has
    caps to check; the local backend spends nothing."""

    def check(total_usd: float, what: str) -> None:
        from datetime import datetime, timezone

        from .budget import period_start, refusal
        from .generate import run_spend

        budget = settings.budget
        if settings.backend == "local" or total_usd <= 0 or (budget.per_run_usd is None and budget.per_period_usd is None):
            return
        journal = settings.journal()
        try:
            if budget.per_run_usd is not None:
                spent = run_spend(journal, settings.run_id) if settings.run_id else 0.0
                if spent + total_usd > budget.per_run_usd + 1e-9:
                    raise BudgetExceeded(refusal(what, "this run", spent, total_usd, budget.per_run_usd))
            if budget.per_period_usd is not None:
                start = period_start(budget.period, datetime.now(timezone.utc))
                spent = journal.spend_since(start, backend="fal", pending=True)
                if spent + total_usd > budget.per_period_usd + 1e-9:
                    raise BudgetExceeded(refusal(what, f"this {budget.period}", spent, total_usd, budget.per_period_usd))
        finally:
            journal.close()

    return check


# --------------------------------------------------------------------------- video frames


def sample_frames(clip: Path, count: int, *, loop: bool) -> list:
    """``count`` frames taken evenly in time from ``clip`` (RGB PIL images). A loop's
    frames split the clip evenly and leave out its last frame (the first again); a
    one-shot's run from the first frame to the last."""
    from .render.motion import import_av

    av = import_av()
    decoded: list[tuple[float, Any]] = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            when = float(frame.pts * stream.time_base) if frame.pts is not None else float(len(decoded))
            decoded.append((when, frame.to_image().convert("RGB")))
    if len(decoded) < 2:
        raise GenerationFailed(f"{clip}: {len(decoded)} frame(s) decoded; a clip needs at least 2 to sample {count} from")
    start, end = decoded[0][0], decoded[-1][0]
    span = end - start
    picked = []
    for i in range(count):
        at = start + span * (i / count if loop else i / max(1, count - 1))
        picked.append(min(decoded, key=lambda item: abs(item[0] - at))[1])
    return picked


# --------------------------------------------------------------------------- summaries


def pose_image_size(spec: CharacterSpec, profile: str = "final") -> tuple[int, int]:
    """The size of the pose images (what keyframes edit and video clips start from)."""
    from .catalog import output_size

    return tuple(output_size(spec.models.pose, {"image_size": spec.profile(profile)["image_size"]}))  # type: ignore[return-value]


def character_estimate(spec: CharacterSpec, profile: str = "final") -> tuple[float, dict[str, str]]:
    """What all of ``spec``'s animations cost on fal (nothing cached), and the ones that
    cannot be priced with why (an unpriced endpoint is never counted as $0)."""
    size = pose_image_size(spec, profile)
    total, refused = 0.0, {}
    for name in spec.animations:
        try:
            total += estimate_animation(spec, name, None, None, profile, base_size=size).total_usd
        except InvalidInput as exc:
            refused[name] = exc.lines()[0]
    return round(total, 6), refused


def summary_line(spec: CharacterSpec, folders: dict[str, Path]) -> str:
    """One line per character for the demo: each animation's frames, method, what it
    billed and what it costs on fal (from the frames' manifests)."""
    parts = []
    for name, folder in folders.items():
        try:
            data = json.loads((Path(folder) / FRAMES_MANIFEST).read_text())
        except (OSError, ValueError):
            parts.append(f"{name} (not made)")
            continue
        animation = spec.animation(name)
        parts.append(f"{name} ({len(data['frames'])} frames at {animation.fps:g} fps{', loop' if animation.loop else ''}, "
                     f"{data['method']} on {data['endpoint']}, billed ${data['cost_usd']:.2f}, on fal ${data['estimated_usd']:.3f})")
    return ", ".join(parts)


@dataclass(frozen=True)
class AnimationRefresh:
    """Which of a character's animations need new frames, and whether its sheet needs
    exporting again; and why."""

    frames: tuple[str, ...] = ()
    sheet: bool = False
    reasons: tuple[str, ...] = ()


def refresh_needed(spec: CharacterSpec, frames: dict[str, str | None], sheet: dict[str, str] | None) -> AnimationRefresh:
    """Compare what was made (``frames``: animation -> the ``frames_version`` its frames
    recorded; ``sheet``: animation -> the ``export_version`` the sheet recorded) with the
    spec. New motion text, frame count, method, endpoint, seed or base pose: that
    animation's frames (and the sheet). A new fps or loop flag: only the sheet."""
    base = spec_version(spec)
    stale, why = [], []
    for name in spec.animations:
        made = frames.get(name)
        if made is None:
            stale.append(name)
            why.append(f"{name}: animation_frames never materialized")
        elif made != frames_version(spec, name, base=base):
            stale.append(name)
            why.append(f"{name}: frames are of version {made}, the spec's are {frames_version(spec, name, base=base)}")
    sheet_stale = bool(stale)
    if sheet is None:
        sheet_stale = True
        why.append("animated_sheet never materialized")
    else:
        for name in spec.animations:
            if sheet.get(name) != export_version(spec, name, base=base):
                sheet_stale = True
                why.append(f"{name}: the sheet exported version {sheet.get(name)}, the spec's is {export_version(spec, name, base=base)}")
        gone = sorted(set(sheet) - set(spec.animations))
        if gone:
            sheet_stale = True
            why.append(f"the sheet still holds {', '.join(gone)}, which the spec no longer names")
    return AnimationRefresh(tuple(stale), sheet_stale, tuple(why))
