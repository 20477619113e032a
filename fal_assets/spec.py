"""Character specs: one YAML file per character, validated into ``CharacterSpec``.

A spec holds everything that decides a character's images: the trigger word, the
full description, style, background, a palette bound to named parts, the poses,
seeds, the fal endpoints per stage, LoRA training settings and quality profiles.

Every problem with a spec file becomes one ``Problem`` line naming the file, the
dotted field (``palette.armor_lines``, ``poses.run.stance``) and what is allowed;
``load_spec`` raises them together as ``InvalidInput``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fal_assets import bounded
from fal_assets.errors import InvalidInput, Problem

SEED_MAX = 2**32 - 1
SAFE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
TRIGGER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,47}$")
PART_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 _-]{0,47}$")
HEX_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
ENDPOINT_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)+$")
ARG_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

IMAGE_SIZE_PRESETS = (
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
)
IMAGE_SIDE_MIN, IMAGE_SIDE_MAX = 64, 14142
# Request arguments the pipeline sets itself; a profile may not override them.
RESERVED_ARGS = ("prompt", "seed", "loras", "lora_config", "image_url", "image_urls")

DEFAULT_PROFILES: dict[str, dict[str, Any]] = {
    "draft": {
        "num_inference_steps": 12,
        "image_size": {"width": 576, "height": 768},
        "output_format": "png",
    },
    "final": {"num_inference_steps": 35, "output_format": "png"},
}

# Reference views for the training dataset: varied angles and expressions of the
# same character (9-50 images make a good LoRA dataset).
DEFAULT_VIEWS: dict[str, str] = {
    "front": "front view, standing straight facing the camera, arms relaxed at the sides, full body visible head to toe",
    "back": "back view, standing and facing away from the camera, full body visible head to toe",
    "side_left": "left side profile view, standing, full body visible head to toe",
    "side_right": "right side profile view, standing, full body visible head to toe",
    "three_quarter_left": "three-quarter view from the front left, standing, full body visible head to toe",
    "three_quarter_right": "three-quarter view from the front right, standing, full body visible head to toe",
    "low_angle": "seen from a low angle, standing confidently with hands on hips, full body visible head to toe",
    "action": "dynamic action pose mid-motion, full body visible head to toe",
    "sitting": "sitting cross-legged on the floor, full body visible",
    "close_up": "close-up portrait of the head and shoulders, facing the camera",
    "expression_happy": "close-up of the face with a big happy smile",
    "expression_angry": "close-up of the face with an angry frowning expression",
    "expression_surprised": "close-up of the face with a surprised expression and wide open mouth",
}


def _fail(kind: str, message: str, subfield: str | None = None) -> PydanticCustomError:
    """A validation error with our own one-line message.

    ``subfield`` extends the reported field (a profile's ``image_size``). Messages hold
    no ``{subfield}`` placeholder, so pydantic's template formatting leaves them as is.
    """
    context = {"subfield": subfield} if subfield else None
    return PydanticCustomError(f"spec_{kind}", message, context)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _safe_name(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail("name", f"must be text, got {_shown(value)}")
    if not SAFE_NAME_RE.match(value):
        raise _fail(
            "name",
            f"{value!r} is not a safe name; use 1-48 characters: lowercase letters, digits, "
            "'_' or '-', starting with a letter or digit",
        )
    return value


def _trigger(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail("trigger", f"must be text, got {_shown(value)}")
    if not TRIGGER_RE.match(value):
        raise _fail(
            "trigger",
            f"{value!r} is not one token; use 3-48 letters, digits, '_' or '-' with no spaces "
            "or commas (e.g. glitch_char)",
        )
    return value


def _part_name(value: Any) -> str:
    if not isinstance(value, str) or not PART_RE.match(value):
        raise _fail(
            "part",
            f"{_shown(value)} is not a part name; use 1-48 letters, digits, spaces, '_' or '-', "
            "starting with a letter (e.g. armor_lines)",
        )
    return value


def _hex_color(value: Any) -> str:
    if value is None:
        raise _fail(
            "hex",
            "is empty; quote hex colours in YAML (\"#FF1493\"): an unquoted '#' starts a comment",
        )
    if not isinstance(value, str) or not HEX_RE.match(value):
        raise _fail("hex", f"{_shown(value)} is not a hex colour; use \"#RRGGBB\" with 6 hex digits")
    return value.upper()


def _text(value: Any) -> str:
    if value is None:
        raise _fail("text", "is empty; write the text")
    if not isinstance(value, str):
        raise _fail("text", f"must be text, got {_shown(value)}; quote it in YAML")
    if not value.strip():
        raise _fail("text", "is empty; write the text")
    return value.strip()


def _endpoint(value: Any) -> str:
    if not isinstance(value, str) or not ENDPOINT_RE.match(value):
        raise _fail(
            "endpoint",
            f"{_shown(value)} is not a fal endpoint id; use owner/model[/path] in lowercase "
            "(e.g. fal-ai/flux-2-pro)",
        )
    return value


def _image_size(value: Any, subfield: str | None = None) -> str | dict[str, int]:
    allowed = ", ".join(IMAGE_SIZE_PRESETS)
    if isinstance(value, str):
        if value in IMAGE_SIZE_PRESETS:
            return value
        raise _fail("image_size", f"{value!r} is not a size preset; use one of {allowed}, or width and height", subfield)
    if isinstance(value, dict):
        keys = set(value)
        if keys != {"width", "height"}:
            raise _fail("image_size", f"a custom size needs exactly width and height, got {', '.join(map(str, value)) or 'nothing'}", subfield)
        for side in ("width", "height"):
            v = value[side]
            if type(v) is not int or not IMAGE_SIDE_MIN <= v <= IMAGE_SIDE_MAX:
                raise _fail("image_size", f"{side} {_shown(v)} is not allowed; use a whole number of pixels from {IMAGE_SIDE_MIN} to {IMAGE_SIDE_MAX}", subfield)
        return {"width": value["width"], "height": value["height"]}
    raise _fail("image_size", f"got {_shown(value)}; use one of {allowed}, or a mapping with width and height", subfield)


def _arg_name(value: Any) -> str:
    if not isinstance(value, str) or not ARG_RE.match(value):
        raise _fail("arg", f"{_shown(value)} is not a request argument name; use lowercase letters, digits and '_'")
    if value in RESERVED_ARGS:
        raise _fail("arg", f"{value!r} is set by the pipeline, not by a profile; remove it (reserved: {', '.join(RESERVED_ARGS)})")
    return value


SafeName = Annotated[str, BeforeValidator(_safe_name)]
TriggerWord = Annotated[str, BeforeValidator(_trigger)]
PartName = Annotated[str, BeforeValidator(_part_name)]
HexColor = Annotated[str, BeforeValidator(_hex_color)]
Text = Annotated[str, BeforeValidator(_text)]
Endpoint = Annotated[str, BeforeValidator(_endpoint)]
ImageSize = Annotated[Any, PlainValidator(lambda value: _image_size(value))]
Seed = Annotated[int, Strict(), Field(ge=0, le=SEED_MAX)]
Stance = Literal["standing", "crouch", "sit", "lying", "airborne"]
STANCES: tuple[str, ...] = get_args(Stance)


def _profile_args(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        try:
            json.dumps(item, allow_nan=False)
        except (TypeError, ValueError):
            raise _fail("arg", f"{_shown(item)} cannot be sent to fal; use text, numbers, true/false, lists or mappings", key) from None
    if "image_size" in value:
        value["image_size"] = _image_size(value["image_size"], "image_size")
    return value


ProfileArgs = Annotated[dict[Annotated[str, BeforeValidator(_arg_name)], Any], AfterValidator(_profile_args)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pose(_Model):
    """One pose. In YAML either a description text or a mapping of these fields.

    ``description`` is the action clause of the prompt; ``stance`` (standing, crouch,
    sit, lying, airborne) guides sprite normalisation; ``seed`` overrides the seed
    derived from the spec's base seed.
    """

    description: Text = Field(description="what the character does in this pose")
    stance: Stance = Field("standing", description="standing, crouch, sit, lying or airborne")
    seed: Seed | None = Field(None, description="seed for this pose (0 to 4294967295)")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"description": value}
        if value is None:
            raise _fail(
                "pose",
                "is empty; give a description text, or a mapping with description, "
                "stance (standing, crouch, sit, lying, airborne) and seed",
            )
        return value


DEFAULT_VARIANT_ENDPOINT = "fal-ai/flux-pro/kontext"
"""Where a variant is edited unless it names another endpoint: Kontext [pro], the seeds'
editing endpoint, keeps the character and is priced ($0.04 per image, fal's page);
``fal-ai/flux-2/lora/edit`` (with the character's LoRA) has no confirmed price yet."""


class Variant(_Model):
    """A variant of every pose (a skin, a colourway), made by editing the base pose image.

    In YAML either the edit instruction or a mapping of these fields. ``palette``
    overrides parts of the character's palette; ``poses`` limits the poses (default
    all); ``references`` are extra input images (files relative to the spec) sent after
    the base pose image, where the endpoint takes several.
    """

    instruction: Text = Field(description="what the edit changes (colours, materials, lighting), e.g. 'Change the neon glow from pink to cyan'")
    palette: dict[PartName, HexColor] = Field(default_factory=dict, description="part of the character's palette -> \"#RRGGBB\" for this variant")
    endpoint: Endpoint = Field(DEFAULT_VARIANT_ENDPOINT, description="the fal edit endpoint")
    seed: Seed | None = Field(None, description="seed of every edit of this variant (default: one per pose, from the pose's seed)")
    poses: list[SafeName] | None = Field(None, description="the poses that get this variant (default: all)")
    references: list[Text] = Field(default_factory=list, description="extra input images, relative to the spec file")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"instruction": value}
        if value is None:
            raise _fail("variant", "is empty; give the edit instruction, or a mapping with instruction, palette, endpoint, seed, poses and references")
        return value


class Models(_Model):
    """fal endpoint id per stage: reference images, LoRA training, pose images."""

    reference: Endpoint = Field("fal-ai/flux-2-pro", description="endpoint for reference/dataset images")
    training: Endpoint = Field("fal-ai/flux-2-trainer", description="endpoint that trains the LoRA")
    pose: Endpoint = Field("fal-ai/flux-2/lora", description="endpoint for pose images")


class Training(_Model):
    """LoRA training settings and the scale the trained LoRA is applied with."""

    steps: Annotated[int, Strict(), Field(ge=1, le=10000)] = Field(1000, description="training steps (1 to 10000)")
    learning_rate: float = Field(0.00005, gt=0, le=0.01, description="learning rate (above 0, at most 0.01)")
    lora_scale: float = Field(1.0, ge=0, le=4, description="LoRA scale at inference (0 to 4; 0.5-1.5 is safe)")


ANIMATION_METHODS = ("keyframes", "video")
ANIMATION_FRAMES_MAX = 48


class Animation(_Model):
    """One animation of a character. In YAML a mapping of these fields, or only the
    motion text (then the base pose is the pose of the animation's own name).

    ``pose`` is the base pose (default: the pose named like the animation); ``frames``
    (2-48), ``fps`` (0 < fps <= 60) and ``loop`` say how it plays; ``motion`` what it
    shows ("one full running stride"). ``method``: ``keyframes`` (each frame an
    identity-keeping edit of the base pose image and the previous frame, seeds pinned
    per frame) or ``video`` (one image-to-video clip, frames sampled evenly);
    ``endpoint`` overrides the method's default endpoint; ``chain: false`` makes every
    keyframe from the base pose alone (all sent at once); ``seed`` overrides the
    derived base seed of the frames. See fal_assets/animation.py.
    """

    motion: Text = Field(description="what the animation shows, e.g. 'one full running stride'")
    pose: SafeName | None = Field(None, description="the base pose (default: the pose named like the animation)")
    frames: Annotated[int, Strict(), Field(ge=2, le=ANIMATION_FRAMES_MAX)] = Field(8, description="frame count (2 to 48)")
    fps: float = Field(12.0, gt=0, le=60, description="playback speed in frames per second (above 0, at most 60)")
    loop: bool = Field(True, description="whether the animation loops (its last frame leads back to its first)")
    method: Literal["keyframes", "video"] = Field("keyframes", description="keyframes or video")
    endpoint: Endpoint | None = Field(None, description="fal endpoint (default: the method's)")
    chain: bool = Field(True, description="keyframes: each frame also sees the previous one (false: the base pose only)")
    seed: Seed | None = Field(None, description="base seed of the frames (0 to 4294967295)")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"motion": value}
        if value is None:
            raise _fail("animation", "is empty; give a motion text, or a mapping with motion, pose, frames, fps, loop and method")
        return value


class CharacterSpec(_Model):
    """A character: identity, look, poses, seeds, endpoints and quality profiles.

    Fields:
      name            partition key and file name: lowercase [a-z0-9][a-z0-9_-]{0,47}
      trigger_word    one token the LoRA learns (e.g. glitch_char)
      description     full description, repeated in every prompt
      style           rendering style (Style part of the prompt)
      background      the Context part of the prompt, kept out of the description
      palette         named part -> "#RRGGBB", rendered as "<part> <hex>"
      poses           pose name (safe name) -> Pose (or its description text)
      seed            base seed; ``seed_for(pose)`` derives one seed per pose
      models          endpoint per stage (reference, training, pose)
      training        LoRA training settings
      profiles        quality profile name -> extra pose request arguments;
                      ``draft`` and ``final`` always exist (defaults merged under yours)
      image_size      pose image size: a preset or {width, height}
      references_dir  optional folder of your own reference images, relative to the spec
      views           view name -> reference image view (dataset); 9+ by default
      variants        variant name -> Variant (or its edit instruction): skins made by editing each pose
    """

    name: SafeName = Field(description="the character's name: lowercase letters, digits, '_' or '-'")
    trigger_word: TriggerWord = Field(description="one token the LoRA learns, e.g. glitch_char")
    description: Text = Field(description="the full character description used in every prompt")
    style: Text = Field(description="the rendering style, e.g. '3D Pixar-style render, cinematic lighting'")
    background: Text = Field("plain white background", description="the background (context) of every image")
    palette: dict[PartName, HexColor] = Field(default_factory=dict, description="named part -> \"#RRGGBB\"")
    poses: dict[SafeName, Pose] = Field(description="pose name -> description text or {description, stance, seed}; at least one")
    seed: Seed = Field(42, description="base seed (0 to 4294967295)")
    models: Models = Field(default_factory=Models)
    training: Training = Field(default_factory=Training)
    profiles: dict[SafeName, ProfileArgs] = Field(default_factory=dict, validate_default=True, description="profile name -> request arguments")
    image_size: ImageSize = Field("portrait_4_3", description="pose image size preset or {width, height}")
    references_dir: Text | None = Field(None, description="folder of your own reference images, relative to the spec file")
    views: dict[SafeName, Text] = Field(default_factory=lambda: dict(DEFAULT_VIEWS), description="view name -> view description; at least one")
    variants: dict[SafeName, Variant] = Field(default_factory=dict, description="variant name -> edit instruction or {instruction, palette, endpoint, seed, poses, references}")
    animations: dict[SafeName, Animation] = Field(default_factory=dict, description="animation name -> {motion, pose, frames, fps, loop, method}")

    _source: Path | None = PrivateAttr(None)
    _references_outside_allowed: bool = PrivateAttr(False)

    @field_validator("poses", "views")
    @classmethod
    def _not_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise _fail("empty", "needs at least one entry (name: description)")
        return value

    @field_validator("variants")
    @classmethod
    def _variant_refs(cls, value: dict[str, Variant], info) -> dict[str, Variant]:
        if not value:
            return value
        from fal_assets.variants import reference_problem

        for name, variant in value.items():
            problem = reference_problem(variant, info.data.get("poses"), info.data.get("palette"))
            if problem:
                raise _fail("variant", problem[1], f"{name}.{problem[0]}")
        return value

    @field_validator("animations")
    @classmethod
    def _animation_poses(cls, value: dict[str, Animation], info: ValidationInfo) -> dict[str, Animation]:
        poses = info.data.get("poses")
        if poses is None:  # the poses have their own error
            return value
        for name, animation in value.items():
            base = animation.pose or name
            if base not in poses:
                hint = "" if animation.pose else f" (no pose is named {name!r}; set pose:)"
                raise _fail("animation_pose", f"{base!r} is not a pose of this spec{hint}; poses: {', '.join(poses)}", f"{name}.pose")
        return value

    @field_validator("profiles")
    @classmethod
    def _with_defaults(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        merged = {name: copy.deepcopy(args) for name, args in DEFAULT_PROFILES.items()}
        for name, args in value.items():
            merged[name] = {**merged.get(name, {}), **args}
        return merged

    @property
    def source(self) -> Path | None:
        """The YAML file this spec was loaded from, if any."""
        return self._source

    @property
    def references_path(self) -> Path | None:
        """``references_dir`` resolved against the spec file's folder."""
        if self.references_dir is None:
            return None
        base = self._source.parent if self._source else Path.cwd()
        return (base / self.references_dir).resolve()

    @property
    def references_outside_allowed(self) -> bool:
        """Whether the loader allowed ``references_dir`` outside the spec's folder tree."""
        return self._references_outside_allowed

    @property
    def uses_lora(self) -> bool:
        """Whether pose images go through a LoRA endpoint (the trigger word leads then)."""
        return "lora" in self.models.pose.lower()

    def _where(self) -> str:
        return str(self._source) if self._source else self.name

    def pose(self, name: str) -> Pose:
        """The pose called ``name``; an unknown name raises ``InvalidInput``."""
        try:
            return self.poses[name]
        except KeyError:
            raise InvalidInput(
                [Problem(self._where(), f"poses.{name}", f"unknown pose; this spec has: {', '.join(self.poses)}")]
            ) from None

    def view(self, name: str) -> str:
        """The description of the view called ``name``; unknown raises ``InvalidInput``."""
        try:
            return self.views[name]
        except KeyError:
            raise InvalidInput(
                [Problem(self._where(), f"views.{name}", f"unknown view; this spec has: {', '.join(self.views)}")]
            ) from None

    def seed_for(self, pose: str) -> int:
        """The pose's seed: its override, else the base seed plus a stable offset from its name."""
        override = self.pose(pose).seed
        return override if override is not None else _offset_seed(self.seed, f"pose:{pose}")

    def animation(self, name: str) -> Animation:
        """The animation called ``name``; an unknown name raises ``InvalidInput``."""
        try:
            return self.animations[name]
        except KeyError:
            raise InvalidInput(
                [Problem(self._where(), f"animations.{name}", f"unknown animation; this spec has: {', '.join(self.animations) or 'none'}")]
            ) from None

    def animation_pose(self, name: str) -> str:
        """The base pose of animation ``name``."""
        return self.animation(name).pose or name

    def seed_for_frame(self, animation: str, index: int) -> int:
        """Frame ``index``'s pinned seed: the animation's seed (or one derived from the
        base seed and its name) plus a stable offset per frame."""
        base = self.animation(animation).seed
        base = base if base is not None else _offset_seed(self.seed, f"animation:{animation}")
        return _offset_seed(base, f"frame:{index}")

    def seed_for_view(self, view: str) -> int:
        """The seed of a reference view: the base seed plus a stable offset from its name."""
        self.view(view)
        return _offset_seed(self.seed, f"view:{view}")

    def profile(self, name: str) -> dict[str, Any]:
        """Request arguments of a quality profile (``image_size`` from the spec unless set)."""
        if name not in self.profiles:
            raise InvalidInput(
                [Problem(self._where(), "profiles", f"unknown profile {name!r}; this spec has: {', '.join(self.profiles)}")]
            )
        return {"image_size": copy.deepcopy(self.image_size), **copy.deepcopy(self.profiles[name])}


def _offset_seed(base: int, label: str) -> int:
    offset = int.from_bytes(hashlib.sha256(label.encode()).digest()[:4], "big")
    return (base + offset) % (SEED_MAX + 1)


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def spec_version(spec: CharacterSpec) -> str:
    """Short stable hash of what shapes the character (references, dataset, LoRA).

    Covers the reference prompts and captions (so description, style, background,
    palette, trigger word and views), endpoints, base seed and training settings.
    Poses and profiles are left to ``pose_version``.
    """
    from fal_assets.prompts import caption, reference_prompt

    return _digest(
        {
            "references": {v: [reference_prompt(spec, v), caption(spec, v), spec.seed_for_view(v)] for v in spec.views},
            "trigger_word": spec.trigger_word,
            "models": spec.models.model_dump(),
            "seed": spec.seed,
            "training": spec.training.model_dump(),
            "references_dir": spec.references_dir,
        }
    )


def pose_version(spec: CharacterSpec, pose: str, profile: str | None = None, *, base: str | None = None) -> str:
    """``spec_version`` plus the pose's prompt, seed, image size and profile arguments.

    With ``profile`` only that profile's arguments count; without, all profiles do.
    The pose's stance is left out: it changes sprite normalisation, not the image.
    ``base`` is ``spec_version(spec)`` when the caller has it already (it is the slow part).
    """
    from fal_assets.prompts import pose_prompt

    profiles = spec.profile(profile) if profile is not None else spec.profiles
    return _digest(
        {
            "spec": base or spec_version(spec),
            "prompt": pose_prompt(spec, pose, lora=spec.uses_lora),
            "seed": spec.seed_for(pose),
            "image_size": spec.image_size,
            "profiles": profiles,
        }
    )


# --------------------------------------------------------------------------- loading


def load_spec(path: str | Path, *, allow_references_outside: bool = False) -> CharacterSpec:
    """Read and validate one spec file; any problem raises ``InvalidInput`` (one line each).

    ``references_dir`` must resolve inside the spec's folder tree unless
    ``allow_references_outside`` (see ``references.py``); its images are checked by
    ``references.check`` (``fal-assets validate``, and before a run uses them)."""
    path = Path(path)
    where = str(path)
    text = bounded.read_text(path, "character spec")
    data = _parse_yaml(text, where)
    if data is None:
        raise InvalidInput([Problem(where, "", "is empty; a spec needs name, trigger_word, description, style and poses")])
    if not isinstance(data, dict):
        raise InvalidInput(
            [Problem(where, "", f"must hold a mapping of spec fields (name, trigger_word, ...), got {_yaml_kind(data)}")]
        )
    try:
        spec = CharacterSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_problems(exc, where)) from None
    spec._source = path
    spec._references_outside_allowed = bool(allow_references_outside)
    folder = spec.references_path
    if folder is not None and not allow_references_outside:
        from fal_assets.references import confinement_problem

        outside = confinement_problem(path, folder, repr(spec.references_dir))
        if outside is not None:
            raise InvalidInput([outside])
    if folder is not None and not folder.is_dir():
        raise InvalidInput(
            [Problem(where, "references_dir", f"folder {spec.references_dir!r} not found next to the spec ({folder}); give an existing folder of reference images")]
        )
    return spec


def scan_specs(folder: str | Path, loader=None, *, allow_references_outside: bool = False) -> tuple[dict[str, CharacterSpec], list[Problem]]:
    """Every good spec in ``folder`` (``*.yaml``/``*.yml``) and the problems of the bad ones.

    Never raises. A name used by two files keeps the first (sorted by file name).
    ``loader`` (default ``load_spec``) reads one file; a caching one saves re-parsing.
    """
    if loader is None:
        def loader(path):
            return load_spec(path, allow_references_outside=allow_references_outside)
    folder = Path(folder)
    specs: dict[str, CharacterSpec] = {}
    problems: list[Problem] = []
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    except OSError as exc:
        return specs, [Problem(str(folder), "", f"cannot read the folder of character specs: {exc.strerror or exc}")]
    for file in files:
        try:
            spec = loader(file)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        except Exception as exc:  # noqa: BLE001 - a sensor must keep going
            problems.append(Problem(str(file), "", f"could not load: {type(exc).__name__}: {exc}"))
            continue
        if spec.name in specs:
            problems.append(
                Problem(str(file), "name", f"{spec.name!r} is already used by {specs[spec.name].source}; give each character its own name")
            )
            continue
        specs[spec.name] = spec
    return specs, problems


def load_specs(folder: str | Path, *, allow_references_outside: bool = False) -> dict[str, CharacterSpec]:
    """Every spec in ``folder`` by name; any bad file or duplicate name raises ``InvalidInput``."""
    specs, problems = scan_specs(folder, allow_references_outside=allow_references_outside)
    if problems:
        raise InvalidInput(problems)
    return specs


# --------------------------------------------------------------------------- YAML

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _parse_yaml(text: str, where: str) -> Any:
    """Parse one YAML document. Mapping keys are always text; duplicate keys are errors.
    Depth and alias expansion are bounded first (``bounded.check_yaml``)."""
    bounded.check_yaml(text, where)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        key_problems = list(_check_keys(node, (), set(), text.splitlines()))
        if key_problems:
            raise InvalidInput(Problem(where, field, msg) for field, msg in key_problems)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise bounded.yaml_error(where, exc) from None
    finally:
        loader.dispose()


_HEX_COMMENT = re.compile(r"\s*(#[0-9A-Fa-f]{6})(?![0-9A-Za-z_])")


def _check_keys(node: yaml.Node, path: tuple[str, ...], seen: set[int], lines: list[str]):
    """Yield (field, message) for duplicate keys and hex codes YAML read as a comment.

    Scalar keys are retagged as text, so ``no:`` stays the pose name 'no'.
    """
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode) and node.style is None and node.end_mark.line < len(lines):
        comment = _HEX_COMMENT.match(lines[node.end_mark.line], node.end_mark.column)
        if comment and not node.value:
            yield ".".join(path), f"is empty: an unquoted {comment.group(1)} starts a YAML comment; quote it (\"{comment.group(1)}\")"
        elif comment:
            yield ".".join(path), (
                f"{comment.group(1)} starts a YAML comment here, so it and the rest of the line are dropped; "
                f"quote the value (\"... {comment.group(1)} ...\")"
            )
    elif isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                key.tag = _STR_TAG
                name = key.value
                field = ".".join((*path, name))
                if name in first_line:
                    what = "pose name" if path == ("poses",) else "key"
                    yield field, (
                        f"duplicate {what} (lines {first_line[name]} and {key.start_mark.line + 1}); "
                        "each may appear once"
                    )
                else:
                    first_line[name] = key.start_mark.line + 1
                yield from _check_keys(value, (*path, name), seen, lines)
            else:
                yield from _check_keys(value, path, seen, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _check_keys(item, (*path, str(index)), seen, lines)


def _yaml_kind(value: Any) -> str:
    return {list: "a list", str: "a text", int: "a number", float: "a number", bool: "true/false"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- errors

_PLAIN_TYPES = {
    "dict_type": "must be a mapping (key: value lines)",
    "model_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be text",
}


def _problems(exc: ValidationError, where: str) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(str(part) for part in error["loc"] if part != "[key]")
        subfield = (error.get("ctx") or {}).get("subfield")
        if subfield:
            loc += (subfield,)
        problems.append(Problem(where, ".".join(loc), _message(error, loc)))
    return problems


def _message(error: dict[str, Any], loc: tuple[str, ...]) -> str:
    kind = error["type"]
    if kind.startswith("spec_"):
        return error["msg"]
    if kind == "missing":
        info = _field_info(loc)
        hint = f": {info.description}" if info is not None and info.description else ""
        return f"is required{hint}"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = list(model.model_fields) if model else []
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key; {guess}allowed keys: {', '.join(allowed)}"
    got = f", got {_shown(error.get('input'))}"
    if kind in _PLAIN_TYPES:
        return _PLAIN_TYPES[kind] + got
    msg = error["msg"]
    return msg[:1].lower() + msg[1:] + got


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union:
            args = [a for a in get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                return tp
        else:
            return tp


def _walk(loc: tuple[str, ...]) -> tuple[Any, Any]:
    """(type at loc, FieldInfo of the last model field on the way) within CharacterSpec."""
    tp: Any = CharacterSpec
    info = None
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(part)
            if info is None:
                return None, None
            tp = info.annotation
        elif get_origin(tp) is dict:
            tp, info = get_args(tp)[1], None
        else:
            return None, None
    return _unwrap(tp), info


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    tp, _ = _walk(loc)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _field_info(loc: tuple[str, ...]):
    return _walk(loc)[1]
