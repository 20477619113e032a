"""The fal endpoint catalog: data/catalog.yaml read into pydantic models, and output sizes.

``load_catalog()`` reads the file once. ``Catalog.get(id)`` resolves aliases
(``fal-ai/flux-2-flash`` -> ``fal-ai/flux-2/flash``) and rejects unknown ids with close
suggestions. ``output_size()`` says how big each output image of a request will be.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, Mapping, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fal_assets.errors import InvalidInput, Problem

Family = Literal["FLUX.1", "FLUX.2", "utility", "Kling"]
Purpose = Literal[
    "text-to-image", "edit", "lora-inference", "lora-edit", "training",
    "background-removal", "pixel-art", "image-to-video",
]
ParamType = Literal[
    "string", "integer", "number", "boolean", "enum", "image_size", "url", "url_list", "loras"
]

MEGAPIXEL = 1024 * 1024
_SIZE_STEP = 16  # ratio-derived sizes are multiples of this (rules.ratio_size)
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParamSpec(_Frozen):
    """One request parameter: its type, default and allowed values."""

    type: ParamType
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    values: tuple[str, ...] | None = None
    min_length: int | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> "ParamSpec":
        if self.type == "enum" and not self.values:
            raise ValueError("an enum parameter needs values")
        if self.type != "enum" and self.values is not None:
            raise ValueError("values belong to enum parameters only")
        if self.type == "enum" and self.default is not None and self.default not in self.values:
            raise ValueError(f"default {self.default!r} is not one of {list(self.values)}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is above maximum")
        if isinstance(self.default, (int, float)) and not isinstance(self.default, bool):
            if self.minimum is not None and self.default < self.minimum:
                raise ValueError(f"default {self.default} is below minimum {self.minimum}")
            if self.maximum is not None and self.default > self.maximum:
                raise ValueError(f"default {self.default} is above maximum {self.maximum}")
        return self

    def allowed(self) -> str:
        """Words for what this parameter accepts (used in error messages)."""
        if self.type == "enum":
            text = "one of " + ", ".join(self.values or ())
        elif self.type in ("integer", "number"):
            kind = "a whole number" if self.type == "integer" else "a number"
            low = "" if self.minimum is None else (
                f"> {_num(self.minimum)}" if self.exclusive_minimum else f">= {_num(self.minimum)}"
            )
            if self.minimum is not None and self.maximum is not None and not self.exclusive_minimum:
                text = f"{kind} from {_num(self.minimum)} to {_num(self.maximum)}"
            else:
                parts = [p for p in (low, "" if self.maximum is None else f"<= {_num(self.maximum)}") if p]
                text = kind + (" " + " and ".join(parts) if parts else "")
        elif self.type == "boolean":
            text = "true or false"
        elif self.type == "string":
            text = "a non-empty string" if self.min_length else "a string"
        elif self.type == "url":
            text = "one URL string"
        elif self.type == "url_list":
            text = "a list of URL strings"
        elif self.type == "loras":
            text = "a list of {path, scale}"
        else:
            text = "a preset name, \"WxH\" or {width, height}"
        if self.default is not None and self.default != []:
            text += f" (default {self.default})"
        return text


class ImageInputSpec(_Frozen):
    """Which key carries input images and how many it takes (``min`` when present)."""

    key: Literal["image_url", "image_urls"]
    min: int = 1
    max: int | None = None
    required: bool = True


class LoraSpec(_Frozen):
    """LoRA support: the key (always ``loras``), how many, and the scale range."""

    key: Literal["loras"] = "loras"
    max: int | None = None
    scale_min: float = 0.0
    scale_max: float = 4.0


class OutputSizeSpec(_Frozen):
    """How the output size is chosen: an ``image_size``, an ``aspect_ratio`` or ``resolution_mode``."""

    mode: Literal["image_size", "aspect_ratio", "resolution_mode", "input"]  # input: the first input's size
    presets: tuple[str, ...] = ()
    custom: bool = False
    min_side: int | None = None
    max_side: int | None = None
    ratios: tuple[str, ...] = ()
    target_megapixels: float = 1.0
    auto: bool = False  # image_size also takes "auto" (fal's edit endpoints: the model picks, from the inputs)
    default: str  # a preset name, "match_input", "auto" or "input_ratio"

    def bounds(self) -> str:
        """Words for the allowed custom side lengths."""
        if self.min_side is not None and self.max_side is not None:
            return f"{self.min_side} to {self.max_side} px each side"
        if self.max_side is not None:
            return f"at most {self.max_side} px each side"
        if self.min_side is not None:
            return f"at least {self.min_side} px each side"
        return "any positive size"


class PresetSize(_Frozen):
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    note: str = ""


class EndpointSpec(_Frozen):
    """Everything fal-assets knows about one fal endpoint."""

    id: str
    aliases: tuple[str, ...] = ()
    family: Family
    purpose: Purpose
    output_kind: Literal["image", "lora", "video"]
    zero_config: bool = False
    schema_complete: bool = True
    source: str
    checked: date
    params: dict[str, ParamSpec]
    image_input: ImageInputSpec | None = None
    output_size: OutputSizeSpec | None = None
    lora: LoraSpec | None = None
    outputs: tuple[str, ...] = ("images",)
    nsfw_flag: bool = True  # the result carries has_nsfw_concepts (flux-2-pro's does not)
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> "EndpointSpec":
        p = self.params
        if self.image_input is not None:
            want = "url" if self.image_input.key == "image_url" else "url_list"
            spec = p.get(self.image_input.key)
            if spec is None or spec.type != want:
                raise ValueError(f"image_input key {self.image_input.key} needs a {want} parameter")
            if spec.required != self.image_input.required:
                raise ValueError("image_input.required disagrees with the parameter")
        for key in ("image_url", "image_urls"):
            if key in p and (self.image_input is None or self.image_input.key != key):
                raise ValueError(f"parameter {key} needs an image_input entry")
        sized = [k for k, v in p.items() if v.type == "image_size"]
        if sized and (sized != ["image_size"] or self.output_size is None or self.output_size.mode != "image_size"):
            raise ValueError("an image_size parameter needs output_size mode image_size")
        if (self.lora is None) != ("loras" not in p):
            raise ValueError("a loras parameter and a lora entry go together")
        if self.output_kind == "lora":
            if self.purpose != "training" or self.output_size is not None:
                raise ValueError("only training endpoints output a LoRA, and they have no output size")
        elif self.output_kind == "image":
            if self.output_size is None:
                raise ValueError("an image endpoint needs output_size")
            if self.output_size.mode == "input":
                if self.image_input is None:
                    raise ValueError("output_size mode input needs an image input")
            elif self.output_size.mode not in p:
                raise ValueError(f"output_size mode {self.output_size.mode} is not a parameter")
        if self.purpose == "training" and self.output_kind != "lora":
            raise ValueError("training endpoints output a LoRA")
        if self.purpose in ("edit", "lora-edit") and (self.image_input is None or not self.image_input.required):
            raise ValueError("edit endpoints need a required image input")
        if self.purpose in ("lora-inference", "lora-edit") and self.lora is None:
            raise ValueError("LoRA endpoints need a lora entry")
        if "prompt" in p and not p["prompt"].required:
            raise ValueError("prompt must be required")
        return self

    @property
    def all_ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


class Catalog(_Frozen):
    """All endpoints (by canonical id), the image size presets and the size rules."""

    version: int
    megapixel_pixels: int = MEGAPIXEL
    rules: dict[str, str] = {}
    image_size_presets: dict[str, PresetSize]
    endpoints: dict[str, EndpointSpec]
    templates: dict[str, Any] = Field(default={}, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _inject_ids(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("endpoints"), dict):
            data = dict(data)
            data["endpoints"] = {
                key: {**value, "id": key} if isinstance(value, dict) else value
                for key, value in data["endpoints"].items()
            }
        return data

    @model_validator(mode="after")
    def _check(self) -> "Catalog":
        seen: dict[str, str] = {}
        for spec in self.endpoints.values():
            for ident in spec.all_ids:
                if ident in seen:
                    raise ValueError(f"id {ident} is used by {seen[ident]} and {spec.id}")
                seen[ident] = spec.id
            size = spec.output_size
            if size is not None:
                unknown = set(size.presets) - set(self.image_size_presets)
                if unknown:
                    raise ValueError(f"{spec.id}: unknown presets {sorted(unknown)}")
                if size.default == "auto" and not size.auto:
                    raise ValueError(f"{spec.id}: output_size default auto needs auto: true")
                if size.mode == "image_size" and size.default not in (*size.presets, "match_input", "auto"):
                    raise ValueError(f"{spec.id}: output_size default {size.default!r} is not a preset")
                if size.mode == "input":
                    continue  # no size parameter: the output has the input's size
                param_default = spec.params[size.mode].default
                # image_size "match_input" and Kontext's "input_ratio" are our names for
                # "parameter omitted"; resolution_mode's match_input is a real fal value.
                omitted = ("match_input",) if size.mode == "image_size" else ("input_ratio",)
                expected = None if size.default in omitted else size.default
                if param_default != expected:
                    raise ValueError(
                        f"{spec.id}: {size.mode} default {param_default!r} is not a preset "
                        f"or disagrees with output_size default {size.default!r}"
                    )
        return self

    def _alias_map(self) -> dict[str, str]:
        return {ident: spec.id for spec in self.endpoints.values() for ident in spec.all_ids}

    def ids(self) -> list[str]:
        """Canonical endpoint ids, sorted (aliases excluded; see ``aliases()``)."""
        return sorted(self.endpoints)

    def aliases(self) -> dict[str, str]:
        """Alias -> canonical id (e.g. ``fal-ai/flux-2-flash`` -> ``fal-ai/flux-2/flash``)."""
        return {a: spec.id for spec in self.endpoints.values() for a in spec.aliases}

    def __contains__(self, endpoint_id: object) -> bool:
        return isinstance(endpoint_id, str) and endpoint_id in self._alias_map()

    def canonical(self, endpoint_id: str) -> str:
        """The id requests should be sent to (aliases resolved)."""
        return self.get(endpoint_id).id

    def get(self, endpoint_id: str) -> EndpointSpec:
        """The endpoint with this id or alias; InvalidInput naming close ids if unknown."""
        known = self._alias_map()
        if isinstance(endpoint_id, str) and endpoint_id in known:
            return self.endpoints[known[endpoint_id]]
        close = difflib.get_close_matches(str(endpoint_id), list(known), n=3, cutoff=0.6)
        hint = (
            "did you mean " + " or ".join(close) + "?"
            if close
            else "known endpoints: " + ", ".join(self.ids())
        )
        raise InvalidInput(
            [Problem(str(endpoint_id), "endpoint", f"unknown endpoint {endpoint_id!r}; {hint}")]
        )

    def taking(self, param: str) -> list[str]:
        """Canonical ids of the endpoints that take ``param``."""
        return [i for i in self.ids() if param in self.endpoints[i].params]

    def preset(self, name: str) -> tuple[int, int]:
        size = self.image_size_presets[name]
        return size.width, size.height


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog shipped in ``fal_assets/data/catalog.yaml`` (read once, then cached)."""
    text = resources.files("fal_assets").joinpath("data/catalog.yaml").read_text("utf-8")
    return Catalog.model_validate(yaml.safe_load(text))


def parse_size(text: str, where: str = "image_size") -> dict[str, int]:
    """``"1024x768"`` -> ``{"width": 1024, "height": 768}`` (``x``, ``X`` or ``×``)."""
    match = _SIZE_RE.match(text) if isinstance(text, str) else None
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise InvalidInput(
            [Problem(where, "", f"{text!r} is not a size; write WIDTHxHEIGHT, e.g. 1024x768")]
        )
    return {"width": int(match.group(1)), "height": int(match.group(2))}


def ratio_size(ratio_w: float, ratio_h: float, megapixels: float = 1.0) -> tuple[int, int]:
    """About ``megapixels`` MP at ratio ``ratio_w:ratio_h``, sides rounded down to 16 px."""
    area = megapixels * MEGAPIXEL
    width = math.sqrt(area * ratio_w / ratio_h)
    height = math.sqrt(area * ratio_h / ratio_w)
    return (
        max(_SIZE_STEP, int(width // _SIZE_STEP) * _SIZE_STEP),
        max(_SIZE_STEP, int(height // _SIZE_STEP) * _SIZE_STEP),
    )


def output_size(
    endpoint_id: str,
    arguments: Mapping[str, Any],
    input_sizes: Sequence[tuple[int, int]] | None = None,
) -> tuple[int, int]:
    """Width and height of each output image of a request.

    Presets and custom sizes come from ``image_size`` (or the endpoint's default);
    ``aspect_ratio`` / ``resolution_mode`` ratios give about 1 MP at that ratio; an
    output that follows the input needs ``input_sizes`` (first input counts).
    """
    catalog = load_catalog()
    spec = catalog.get(endpoint_id)
    size = spec.output_size
    if size is None:
        raise InvalidInput(
            [Problem(endpoint_id, "", f"{spec.id} outputs {'a LoRA' if spec.output_kind == 'lora' else 'a ' + spec.output_kind} ({', '.join(spec.outputs)}), not images")]
        )
    chosen = arguments.get(size.mode)
    if chosen is None:
        chosen = size.default
    field = f"arguments.{size.mode}"

    if size.mode == "image_size":
        if isinstance(chosen, dict):
            return _whole(chosen.get("width"), endpoint_id, field), _whole(
                chosen.get("height"), endpoint_id, field
            )
        if chosen in ("match_input", "auto"):  # auto: we take the first input's size (the model decides)
            return _first_input(endpoint_id, field, input_sizes)
        if chosen in catalog.image_size_presets:
            return catalog.preset(chosen)
        if isinstance(chosen, str):
            parsed = parse_size(chosen, endpoint_id)
            return parsed["width"], parsed["height"]
        raise InvalidInput([Problem(endpoint_id, field, f"cannot read a size from {chosen!r}")])

    if size.mode == "input" or chosen in ("match_input",):
        return _first_input(endpoint_id, field, input_sizes)
    if chosen in ("input_ratio", "auto"):
        width, height = _first_input(endpoint_id, field, input_sizes)
        return ratio_size(width, height, size.target_megapixels)
    if isinstance(chosen, str) and chosen in size.ratios:
        a, b = (float(x) for x in chosen.split(":"))
        return ratio_size(a, b, size.target_megapixels)
    raise InvalidInput(
        [Problem(endpoint_id, field, f"{chosen!r} is not one of {', '.join(size.ratios)}")]
    )


def _whole(value: Any, where: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value <= 0:
        raise InvalidInput([Problem(where, field, f"width and height must be positive whole numbers, got {value!r}")])
    return int(value)


def _first_input(
    where: str, field: str, input_sizes: Sequence[tuple[int, int]] | None
) -> tuple[int, int]:
    if not input_sizes:
        raise InvalidInput(
            [Problem(where, field, "the output follows the input image; pass input_sizes (width, height of each input)")]
        )
    width, height = input_sizes[0]
    return _whole(width, where, "input_sizes[0]"), _whole(height, where, "input_sizes[0]")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
