"""Check request arguments against the catalog before any money moves.

``validate(endpoint, arguments)`` returns the arguments normalised (``"WxH"`` sizes as
``{width, height}``, whole floats as ints, digit enums as strings; no defaults filled
in) or raises one ``InvalidInput`` listing every problem, each naming the field and
what is allowed. ``validate_request`` does the same for a request file body.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Mapping

from fal_assets.catalog import (
    Catalog,
    EndpointSpec,
    ParamSpec,
    load_catalog,
    parse_size,
)
from fal_assets.errors import InvalidInput, Problem

#: Keys people send when they mean a LoRA (seed 000 step 3 used ``lora_config``).
LORA_KEYS = frozenset({"lora_config", "lora", "lora_url", "lora_path", "lora_weights", "lora_scale", "loras"})
#: Tuning knobs that zero-config endpoints set themselves.
TUNING_KEYS = frozenset({"guidance_scale", "num_inference_steps"})
SIZE_KEYS = frozenset({"image_size", "aspect_ratio", "resolution_mode"})
IMAGE_KEYS = frozenset({"image_url", "image_urls"})
REQUEST_KEYS = ("endpoint", "arguments")


def validate(endpoint: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised copy of ``arguments`` for ``endpoint``, or InvalidInput with every problem."""
    catalog = load_catalog()
    spec = catalog.get(endpoint)
    if not isinstance(arguments, Mapping):
        raise InvalidInput(
            [Problem(endpoint, "arguments", f"must be a mapping of parameter names to values, got {_kind(arguments)}")]
        )
    checker = _Checker(catalog, spec, endpoint)
    normalised: dict[str, Any] = {}
    for key, value in arguments.items():
        if not isinstance(key, str) or key not in spec.params:
            checker.problem(f"arguments.{key}", _unknown_parameter(catalog, spec, str(key)))
            if key in IMAGE_KEYS or key in SIZE_KEYS or key in LORA_KEYS:
                checker.explained.add(_pointed_key(spec, str(key)))
            continue
        normalised[key] = checker.value(f"arguments.{key}", key, spec.params[key], value)
    for name, param in spec.params.items():
        if param.required and name not in arguments and name not in checker.explained:
            checker.problem(f"arguments.{name}", f"is required: {param.allowed()}")
    if checker.problems:
        raise InvalidInput(checker.problems)
    return normalised


def validate_request(obj: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """Check a request body ``{"endpoint": ..., "arguments": {...}}`` read from ``where``.

    Returns the canonical endpoint id (aliases resolved) and the normalised arguments.
    """
    if not isinstance(obj, Mapping):
        raise InvalidInput(
            [Problem(where, "", f"a request must be a mapping with keys endpoint and arguments, got {_kind(obj)}")]
        )
    problems: list[Problem] = []
    for key in obj:
        if key not in REQUEST_KEYS:
            problems.append(Problem(where, str(key), "unknown key; a request has only endpoint and arguments"))
    endpoint = obj.get("endpoint")
    arguments = obj.get("arguments")
    if "endpoint" not in obj:
        problems.append(Problem(where, "endpoint", "is required: a fal endpoint id such as fal-ai/flux-2-pro"))
    elif not isinstance(endpoint, str) or not endpoint.strip():
        problems.append(Problem(where, "endpoint", f"must be a fal endpoint id string, got {_kind(endpoint)}"))
        endpoint = None
    if "arguments" not in obj:
        problems.append(Problem(where, "arguments", "is required: a mapping of parameter names to values"))
    elif not isinstance(arguments, Mapping):
        problems.append(Problem(where, "arguments", f"must be a mapping of parameter names to values, got {_kind(arguments)}"))
        arguments = None
    normalised: dict[str, Any] = {}
    if isinstance(endpoint, str):
        try:
            if arguments is None:
                load_catalog().get(endpoint)
            else:
                normalised = validate(endpoint, arguments)
        except InvalidInput as err:
            problems.extend(err.located(where).problems)
    if problems:
        raise InvalidInput(problems)
    return load_catalog().canonical(endpoint), normalised


class _Checker:
    """Collects problems while checking one request's values."""

    def __init__(self, catalog: Catalog, spec: EndpointSpec, where: str):
        self.catalog, self.spec, self.where = catalog, spec, where
        self.problems: list[Problem] = []
        self.explained: set[str] = set()  # required keys a wrong-key message already points to

    def problem(self, field: str, message: str) -> None:
        self.problems.append(Problem(self.where, field, message))

    def value(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        handler = getattr(self, f"_{param.type}")
        return handler(field, name, param, value)

    # -- scalar types -----------------------------------------------------------
    def _string(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        if not isinstance(value, str):
            self.problem(field, f"must be {param.allowed()}, got {_kind(value)}")
        elif param.min_length and len(value.strip()) < param.min_length:
            self.problem(field, "must not be empty" if param.min_length == 1 else f"must have at least {param.min_length} characters")
        return value

    def _integer(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(field, f"must be {param.allowed()}, got {_kind(value)}")
            return value
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                self.problem(field, f"{value!r} is not a whole number; allowed: {param.allowed()}")
                return value
            value = int(value)
        self._range(field, param, value)
        return value

    def _number(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(field, f"must be {param.allowed()}, got {_kind(value)}")
        elif not math.isfinite(value):
            self.problem(field, f"{value!r} is not a finite number; allowed: {param.allowed()}")
        else:
            self._range(field, param, value)
        return value

    def _range(self, field: str, param: ParamSpec, value: float) -> None:
        low, high = param.minimum, param.maximum
        too_low = low is not None and (value <= low if param.exclusive_minimum else value < low)
        if too_low or (high is not None and value > high):
            self.problem(field, f"{value!r} is out of range; allowed: {param.allowed()}")

    def _boolean(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        if not isinstance(value, bool):
            self.problem(field, f"must be true or false, got {_kind(value)}")
        return value

    def _enum(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        values = param.values or ()
        if isinstance(value, int) and not isinstance(value, bool) and str(value) in values:
            return str(value)  # fal's digit enums (safety_tolerance) are strings
        if not isinstance(value, str) or value not in values:
            self.problem(field, f"{value!r} is not allowed; {param.allowed()}")
        return value

    # -- inputs -----------------------------------------------------------------
    def _url(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            self.problem(field, f"{self.spec.id} takes one image as {name} (a URL string), not a list; for several images use an endpoint that takes image_urls")
        elif not isinstance(value, str) or not value.strip():
            self.problem(field, f"must be {param.allowed()} (a URL or data URI), got {_kind(value)}")
        return value

    def _url_list(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        if isinstance(value, str):
            self.problem(field, "must be a list of URL strings, e.g. [\"https://...\"], got one string")
            return value
        if not isinstance(value, (list, tuple)):
            self.problem(field, f"must be a list of URL strings, got {_kind(value)}")
            return value
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.problem(f"{field}[{index}]", f"must be a URL string (or data URI), got {_kind(item)}")
        spec = self.spec.image_input
        if spec is not None and spec.key == name:
            if len(value) < spec.min:
                self.problem(field, f"needs at least {spec.min} image URL(s), got {len(value)}")
            if spec.max is not None and len(value) > spec.max:
                self.problem(field, f"too many input images: {len(value)} given, at most {spec.max} allowed on {self.spec.id}")
        return list(value)

    def _loras(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        lora = self.spec.lora
        if not isinstance(value, (list, tuple)):
            self.problem(field, f"must be a list of {{path, scale}} entries, got {_kind(value)}")
            return value
        if lora is not None and lora.max is not None and len(value) > lora.max:
            self.problem(field, f"too many LoRAs: {len(value)} given, at most {lora.max} on {self.spec.id}")
        scale_low = lora.scale_min if lora else 0.0
        scale_high = lora.scale_max if lora else 4.0
        entries = []
        for index, entry in enumerate(value):
            where = f"{field}[{index}]"
            if not isinstance(entry, Mapping):
                self.problem(where, f"must be a mapping {{path, scale}}, got {_kind(entry)}")
                entries.append(entry)
                continue
            for key in entry:
                if key not in ("path", "scale"):
                    self.problem(f"{where}.{key}", "unknown LoRA key; a LoRA entry has path and scale")
            path = entry.get("path")
            if "path" not in entry:
                self.problem(f"{where}.path", "is required: the LoRA file URL, Hugging Face repo or path")
            elif not isinstance(path, str) or not path.strip():
                self.problem(f"{where}.path", f"must be a non-empty URL or path string, got {_kind(path)}")
            scale = entry.get("scale")
            if "scale" in entry:
                if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
                    self.problem(f"{where}.scale", f"must be a number from {_fmt(scale_low)} to {_fmt(scale_high)}, got {_kind(scale)}")
                elif not scale_low <= scale <= scale_high:
                    self.problem(f"{where}.scale", f"{scale!r} is out of range; allowed: {_fmt(scale_low)} to {_fmt(scale_high)} (1.0 = full strength)")
            entries.append(dict(entry))
        return entries

    def _image_size(self, field: str, name: str, param: ParamSpec, value: Any) -> Any:
        size = self.spec.output_size
        assert size is not None  # catalog guarantees an output_size for image_size params
        presets = ", ".join((*size.presets, "auto") if size.auto else size.presets)
        if isinstance(value, str):
            if value in size.presets or (size.auto and value == "auto"):
                return value
            try:
                value = parse_size(value, self.where)
            except InvalidInput:
                self.problem(field, f"{value!r} is not a preset or WIDTHxHEIGHT; allowed: {presets}, or {{width, height}} ({size.bounds()})")
                return value
        if not isinstance(value, Mapping):
            self.problem(field, f"must be a preset ({presets}) or {{width, height}}, got {_kind(value)}")
            return value
        if not size.custom:
            self.problem(field, f"{self.spec.id} takes only presets: {presets}")
            return dict(value)
        result: dict[str, Any] = {}
        for key in value:
            if key not in ("width", "height"):
                self.problem(f"{field}.{key}", "unknown key; a custom size has width and height")
        for key in ("width", "height"):
            side = value.get(key)
            where = f"{field}.{key}"
            if key not in value:
                self.problem(where, f"is required for a custom size ({size.bounds()})")
                continue
            if isinstance(side, bool) or not isinstance(side, (int, float)) or not math.isfinite(side) or side != int(side):
                self.problem(where, f"must be a whole number of pixels, got {_kind(side)}")
                result[key] = side
                continue
            side = int(side)
            result[key] = side
            too_small = side < (size.min_side or 1)
            too_big = size.max_side is not None and side > size.max_side
            if too_small or too_big:
                self.problem(where, f"{side} is outside the allowed custom size for {self.spec.id}: {size.bounds()}")
        return result


def _unknown_parameter(catalog: Catalog, spec: EndpointSpec, key: str) -> str:
    """The one message for a key the endpoint does not take, with where it belongs."""
    eid = spec.id
    if key in LORA_KEYS:
        return _lora_message(catalog, spec, key)
    if key in IMAGE_KEYS:
        if spec.image_input is not None:
            other = spec.image_input.key
            shape = "one URL string" if other == "image_url" else "a list of URL strings"
            return f"{eid} takes {other} ({shape}), not {key}"
        edits = [
            i for i in catalog.ids()
            if catalog.endpoints[i].family == spec.family and catalog.endpoints[i].purpose == "edit"
        ]
        return f"{eid} takes no input images; to edit images use {' or '.join(edits) or 'an edit endpoint'}"
    if key in SIZE_KEYS and spec.output_size is not None:
        mode = spec.output_size.mode
        return f"{eid} sets its output size with {mode} ({spec.params[mode].allowed()}), not {key}"
    if key in TUNING_KEYS and spec.zero_config:
        return (
            f"{eid} is zero-config: it takes no {key} (the model sets it); "
            f"endpoints that take {key}: {', '.join(_same_family_first(catalog, spec, key))}"
        )
    message = f"{eid} does not take {key}"
    close = difflib.get_close_matches(key, list(spec.params), n=1, cutoff=0.75)
    if close:
        message += f" (did you mean {close[0]}?)"
    elif key == "num_images":
        message += "; send one request per image"
    takers = _same_family_first(catalog, spec, key)
    if takers and not close:
        message += f"; endpoints that take it: {', '.join(takers)}"
    message += f"; it takes: {', '.join(sorted(spec.params))}"
    if not spec.schema_complete:
        message += (
            " (this endpoint's catalog entry is incomplete, see its notes: if fal takes "
            f"{key}, add it to fal_assets/data/catalog.yaml)"
        )
    return message


def _lora_message(catalog: Catalog, spec: EndpointSpec, key: str) -> str:
    if spec.lora is not None:
        limit = f" (at most {spec.lora.max})" if spec.lora.max is not None else ""
        return f"{spec.id} takes LoRAs as loras: [{{path, scale}}]{limit}, not {key}"
    parts = []
    for family in ("FLUX.2", "FLUX.1"):
        for ident in catalog.ids():
            target = catalog.endpoints[ident]
            if target.family != family or target.purpose != "lora-inference" or target.lora is None:
                continue
            limit = f", at most {target.lora.max}" if target.lora.max is not None else ""
            whose = "FLUX.2 trainer LoRAs" if family == "FLUX.2" else "FLUX.1 LoRAs"
            parts.append(f"{whose} go to {ident} as loras: [{{path, scale}}]{limit}")
    what = "" if key == "loras" else f" ({key} is not a fal parameter)"
    return f"{spec.id} takes no LoRA{what}; " + "; ".join(parts)


def _same_family_first(catalog: Catalog, spec: EndpointSpec, key: str) -> list[str]:
    takers = [i for i in catalog.taking(key) if i != spec.id]
    same = [i for i in takers if catalog.endpoints[i].family == spec.family]
    return same or takers


def _pointed_key(spec: EndpointSpec, key: str) -> str:
    """The required key a wrong-key message already names (so it is not reported twice)."""
    if key in IMAGE_KEYS and spec.image_input is not None:
        return spec.image_input.key
    return key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    return type(value).__name__


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
