"""What a request will cost, from data/prices.yaml (or a user override) and the catalog.

Rules (all data-driven): per MP with MP = ceil(width*height / 1024^2) per image; first
MP + each extra MP; per MP on input and output; flat per image; per training step with
reference multipliers. An endpoint without a known price raises InvalidInput telling
the user how to supply one, never a silent $0.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from fal_assets import bounded
from fal_assets.catalog import MEGAPIXEL, EndpointSpec, load_catalog, output_size
from fal_assets.errors import InvalidInput, Problem
from fal_assets.media import MAX_INPUT_SIDE
from fal_assets.validation import validate

ENV_OVERRIDE = "FAL_ASSETS_PRICES"
Unit = Literal["megapixel", "image", "step", "second"]
_ASSUMED_INPUT = (1024, 1024)
_SIX = Decimal("0.000001")
#: The most identical requests one estimate prices.
MAX_COUNT = 100_000


def megapixels(width: int, height: int) -> int:
    """Billed megapixels of one image: ``ceil(width*height / 1024^2)`` (1024x768 -> 1)."""
    if isinstance(width, bool) or isinstance(height, bool) or int(width) != width or int(height) != height:
        raise ValueError(f"image sides must be whole numbers, got {width!r} x {height!r}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image sides must be positive, got {width} x {height}")
    return math.ceil(int(width) * int(height) / MEGAPIXEL)


def _decimal(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return Decimal(str(value))  # 0.021, not the binary float's 0.02100000000000000130...
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriceEntry(_Frozen):
    """One endpoint's price and the rule it is applied by."""

    unit: Unit
    price: Decimal
    extra_megapixel_price: Decimal | None = None
    billed_on: tuple[Literal["input", "output"], ...] = ("output",)
    reference_multipliers: dict[int, Decimal] | None = None
    input_megapixels: int | None = None  # each input billed as this many MP (the endpoint resizes it)
    source: str
    checked: date
    notes: tuple[str, ...] = ()

    @field_validator("price", "extra_megapixel_price", mode="before")
    @classmethod
    def _money(cls, value: Any) -> Any:
        return _decimal(value)

    @field_validator("reference_multipliers", mode="before")
    @classmethod
    def _multipliers(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: _decimal(v) for key, v in value.items()}
        return value

    @model_validator(mode="after")
    def _rules(self) -> "PriceEntry":
        if self.price < 0 or (self.extra_megapixel_price is not None and self.extra_megapixel_price < 0):
            raise ValueError("prices cannot be negative")
        if "output" not in self.billed_on:
            raise ValueError("billed_on must include output")
        if self.unit != "megapixel" and self.billed_on != ("output",):
            raise ValueError("billed_on applies to megapixel prices only")
        if self.extra_megapixel_price is not None and self.unit != "megapixel":
            raise ValueError("extra_megapixel_price needs unit megapixel")
        if self.input_megapixels is not None and (self.input_megapixels < 1 or "input" not in self.billed_on):
            raise ValueError("input_megapixels (>= 1) applies to prices billed on input")
        if self.reference_multipliers is not None:
            if self.unit != "step":
                raise ValueError("reference_multipliers apply to step prices only")
            if not self.reference_multipliers or any(
                k < 1 or v <= 0 for k, v in self.reference_multipliers.items()
            ):
                raise ValueError("reference_multipliers map reference counts (>= 1) to positive factors")
        return self


class UnpricedEntry(_Frozen):
    """An endpoint whose price is not known: estimating it asks the user for one."""

    source: str
    checked: date
    notes: tuple[str, ...] = ()


class PriceTable(_Frozen):
    """Prices by canonical endpoint id, plus the endpoints known to be unpriced."""

    version: int = 1
    currency: Literal["USD"] = "USD"
    prices: dict[str, PriceEntry] = {}
    unpriced: dict[str, UnpricedEntry] = {}
    override: str | None = None  # the user file merged in, if any

    def entry(self, endpoint: str) -> PriceEntry:
        """The price for ``endpoint`` (alias or id); InvalidInput if none is known."""
        spec = load_catalog().get(endpoint)
        found = self.prices.get(spec.id)
        if found is not None:
            return found
        known = self.unpriced.get(spec.id)
        why = "".join(" " + n.rstrip(".") + "." for n in known.notes) if known else ""
        raise InvalidInput(
            [
                Problem(
                    endpoint,
                    "price",
                    f"no price is known for {spec.id}.{why} Supply one in a prices file in the "
                    f"format of fal_assets/data/prices.yaml (prices: {{{spec.id}: {{unit: megapixel, "
                    f"price: ..., source: ..., checked: YYYY-MM-DD}}}}) and pass it as "
                    f"load_prices(override=PATH) or set {ENV_OVERRIDE}=PATH",
                )
            ]
        )

    def merged(self, other: "PriceTable", origin: str | None = None) -> "PriceTable":
        """This table with ``other``'s entries replacing or adding to it."""
        prices = {**self.prices, **other.prices}
        unpriced = {k: v for k, v in {**self.unpriced, **other.unpriced}.items() if k not in other.prices}
        return PriceTable(
            version=self.version, currency=self.currency, prices=prices, unpriced=unpriced, override=origin
        )


@dataclass(frozen=True)
class CostEstimate:
    """The estimated cost of ``count`` identical requests (totals cover all of them)."""

    endpoint: str
    cost_usd: float
    per_request_usd: float
    count: int
    unit: Unit
    unit_price: float
    extra_unit_price: float | None
    images: int
    output_size: tuple[int, int] | None
    billed_mp_in: int
    billed_mp_out: int
    steps: int
    multiplier: float
    source: str
    checked: str
    assumptions: tuple[str, ...] = ()
    seconds: int = 0  # seconds of output video (unit: second)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_size"] = list(self.output_size) if self.output_size else None
        data["assumptions"] = list(self.assumptions)
        return data

    def describe(self) -> str:
        """One line: total, per request, what was billed, the source and any assumption."""
        each = self._detail()
        plural = "s" if self.count != 1 else ""
        line = (
            f"{self.endpoint}: {_usd(self.cost_usd)} for {self.count} request{plural} "
            f"({_usd(self.per_request_usd)} each: {each}); source: {self.source} ({self.checked})"
        )
        if self.assumptions:
            line += "; assumed: " + "; ".join(self.assumptions)
        return line.replace("\n", " ")

    def _detail(self) -> str:
        per_images = self.images // self.count if self.count else 0
        if self.unit == "step":
            text = f"{self.steps // self.count} steps at {_usd(self.unit_price)}/step"
            if self.multiplier != 1:
                text += f" x {self.multiplier:g}"
            return text
        if self.unit == "second":
            return f"{self.seconds // self.count} s of video at {_usd(self.unit_price)}/s"
        img = f"{per_images} image{'s' if per_images != 1 else ''}"
        if self.output_size:
            img += f" {self.output_size[0]}x{self.output_size[1]}"
        if self.unit == "image":
            return f"{img} at {_usd(self.unit_price)} each"
        mp_out = self.billed_mp_out // self.count
        mp_in = self.billed_mp_in // self.count
        rate = (
            f"{_usd(self.unit_price)} first MP + {_usd(self.extra_unit_price)} each extra MP per image"
            if self.extra_unit_price is not None
            else f"{_usd(self.unit_price)}/MP"
        )
        billed = f"{mp_out} MP out" + (f" + {mp_in} MP in" if mp_in else "")
        return f"{img}, {billed} at {rate}"


@lru_cache(maxsize=1)
def _shipped_prices() -> PriceTable:
    text = resources.files("fal_assets").joinpath("data/prices.yaml").read_text("utf-8")
    table = PriceTable.model_validate(yaml.safe_load(text))
    catalog = load_catalog()
    for key in (*table.prices, *table.unpriced):
        if key not in catalog.endpoints:  # shipped data must use canonical ids
            raise ValueError(f"prices.yaml: {key} is not a canonical catalog id")
    return table


def load_prices(override: str | Path | None = None) -> PriceTable:
    """The shipped prices, with a user YAML file (same format) replacing entries.

    With ``override`` None, the path in ``$FAL_ASSETS_PRICES`` is used if set.
    """
    base = _shipped_prices()
    if override is None:
        override = os.environ.get(ENV_OVERRIDE) or None
    if override is None:
        return base
    return base.merged(_read_override(Path(override)), origin=str(override))


def _read_override(path: Path) -> PriceTable:
    where = str(path)
    if not path.exists():
        raise InvalidInput([Problem(where, "", f"prices file not found (set by argument or {ENV_OVERRIDE})")])
    raw = bounded.load_yaml(bounded.read_text(path, "prices file"), where)
    if not isinstance(raw, Mapping):
        raise InvalidInput([Problem(where, "", "a prices file is a mapping with a prices: section")])
    catalog = load_catalog()
    problems: list[Problem] = []
    data = dict(raw)
    for section in ("prices", "unpriced"):
        entries = data.get(section) or {}
        if not isinstance(entries, Mapping):
            problems.append(Problem(where, section, "must be a mapping of endpoint id to entry"))
            continue
        resolved = {}
        for key, value in entries.items():
            if key in catalog:
                resolved[catalog.canonical(key)] = value
            else:
                problems.append(catalog_problem(where, f"{section}.{key}", str(key)))
        data[section] = resolved
    if problems:
        raise InvalidInput(problems)
    try:
        return PriceTable.model_validate(data)
    except ValidationError as err:
        raise InvalidInput(
            [
                Problem(where, ".".join(str(p) for p in e["loc"]), e["msg"])
                for e in err.errors(include_url=False)
            ]
        ) from None


def catalog_problem(where: str, field: str, endpoint: str) -> Problem:
    """A problem for an unknown endpoint id inside a file, with the catalog's suggestion."""
    try:
        load_catalog().get(endpoint)
    except InvalidInput as err:
        return Problem(where, field, err.problems[0].message)
    raise AssertionError("catalog_problem called for a known endpoint")


def estimate(
    endpoint: str,
    arguments: Mapping[str, Any],
    input_sizes: Sequence[tuple[int, int]] | None = None,
    count: int = 1,
    prices: PriceTable | None = None,
    *,
    references: int | None = None,
) -> CostEstimate:
    """Cost of ``count`` identical requests of ``arguments`` to ``endpoint``.

    ``arguments`` are validated first. ``input_sizes`` are the (width, height) of the
    input images of an edit; without them each input is assumed to be 1 MP and the
    estimate says so. ``references`` (1 or 2) is needed for edit training only.
    """
    args = validate(endpoint, arguments)
    spec = load_catalog().get(endpoint)
    entry = (prices if prices is not None else load_prices()).entry(endpoint)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise InvalidInput([Problem(endpoint, "count", f"must be a whole number from 1 to {MAX_COUNT:,}, got {count!r}")])
    assumptions: list[str] = []
    inputs = _input_count(spec, args)
    sizes = _input_sizes(endpoint, spec, inputs, input_sizes)

    steps = 0
    multiplier = Decimal(1)
    images = 0
    size: tuple[int, int] | None = None
    mp_in = mp_out = 0
    seconds = 0
    if entry.unit == "second":
        seconds = _video_seconds(endpoint, spec, args)
        per_request = entry.price * seconds
    elif entry.unit == "step":
        steps = int(args.get("steps", spec.params["steps"].default))
        multiplier = _multiplier(endpoint, entry, references)
        per_request = entry.price * steps * multiplier
    else:
        if references is not None:
            raise InvalidInput([Problem(endpoint, "references", "applies to edit training only")])
        images = int(args.get("num_images", _default(spec, "num_images", 1)))
        needs_inputs = _output_needs_inputs(spec, args)
        if sizes is None and inputs and (needs_inputs or ("input" in entry.billed_on and entry.input_megapixels is None)):
            sizes = [_ASSUMED_INPUT] * inputs
            assumptions.append(
                f"input sizes not given: each of {inputs} input image{'s' if inputs != 1 else ''} "
                f"taken as 1 MP ({_ASSUMED_INPUT[0]}x{_ASSUMED_INPUT[1]})"
            )
        size = output_size(spec.id, args, sizes)
        if entry.unit == "image":
            per_request = entry.price * images
        else:
            each = megapixels(*size)
            mp_out = each * images
            if entry.extra_megapixel_price is not None:
                per_request = images * (entry.price + entry.extra_megapixel_price * (each - 1))
            else:
                per_request = entry.price * mp_out
            if "input" in entry.billed_on and sizes:
                if entry.input_megapixels is not None:  # the endpoint resizes each input first
                    mp_in = entry.input_megapixels * len(sizes)
                else:
                    mp_in = sum(megapixels(w, h) for w, h in sizes)
                # With a first-MP price, inputs are "additional processed megapixels".
                per_request += (entry.extra_megapixel_price or entry.price) * mp_in
            elif "input" in entry.billed_on and inputs and entry.input_megapixels is not None:
                mp_in = entry.input_megapixels * inputs
                per_request += (entry.extra_megapixel_price or entry.price) * mp_in
    total = per_request * count
    return CostEstimate(
        endpoint=spec.id,
        cost_usd=_round(total),
        per_request_usd=_round(per_request),
        count=count,
        unit=entry.unit,
        unit_price=float(entry.price),
        extra_unit_price=None if entry.extra_megapixel_price is None else float(entry.extra_megapixel_price),
        images=images * count,
        output_size=size,
        billed_mp_in=mp_in * count,
        billed_mp_out=mp_out * count,
        steps=steps * count,
        multiplier=float(multiplier),
        source=entry.source,
        checked=entry.checked.isoformat(),
        assumptions=tuple(assumptions),
        seconds=seconds * count,
    )


def _video_seconds(endpoint: str, spec: EndpointSpec, args: Mapping[str, Any]) -> int:
    """Seconds of video a request asks for: its ``duration`` (fal sends it as a string)."""
    value = args.get("duration", _default(spec, "duration", None))
    try:
        seconds = int(str(value).rstrip("s"))
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise InvalidInput([Problem(endpoint, "duration", f"{value!r} gives no whole number of seconds to price the video by")])
    return seconds


def _input_count(spec: EndpointSpec, args: Mapping[str, Any]) -> int:
    if spec.image_input is None or spec.image_input.key not in args:
        return 0
    value = args[spec.image_input.key]
    return len(value) if isinstance(value, list) else 1


def _input_sizes(
    endpoint: str, spec: EndpointSpec, inputs: int, input_sizes: Sequence[tuple[int, int]] | None
) -> list[tuple[int, int]] | None:
    if input_sizes is None:
        return None
    sizes = [tuple(s) for s in input_sizes]
    if len(sizes) != inputs:
        key = spec.image_input.key if spec.image_input else "no image input"
        raise InvalidInput(
            [Problem(endpoint, "input_sizes", f"{len(sizes)} sizes given for {inputs} input image(s) ({key})")]
        )
    for index, pair in enumerate(sizes):
        if len(pair) != 2:
            raise InvalidInput([Problem(endpoint, f"input_sizes[{index}]", "must be (width, height)")])
        try:
            megapixels(*pair)
        except (ValueError, TypeError) as err:
            raise InvalidInput([Problem(endpoint, f"input_sizes[{index}]", str(err))]) from None
        if max(pair) > MAX_INPUT_SIDE:
            raise InvalidInput([Problem(endpoint, f"input_sizes[{index}]", f"{pair[0]}x{pair[1]}: an input image is at most {MAX_INPUT_SIDE} px a side")])
    return sizes  # type: ignore[return-value]


def _output_needs_inputs(spec: EndpointSpec, args: Mapping[str, Any]) -> bool:
    try:
        output_size(spec.id, args, None)
    except InvalidInput:
        return True
    return False


def _multiplier(endpoint: str, entry: PriceEntry, references: int | None) -> Decimal:
    table = entry.reference_multipliers
    if table is None:
        if references is not None:
            raise InvalidInput([Problem(endpoint, "references", "applies to edit training only")])
        return Decimal(1)
    allowed = ", ".join(str(k) for k in sorted(table))
    if references is None:
        raise InvalidInput(
            [Problem(endpoint, "references", f"edit training is priced by reference images per example; pass references= one of {allowed}")]
        )
    if isinstance(references, bool) or references not in table:
        raise InvalidInput([Problem(endpoint, "references", f"{references!r} is not priced; one of {allowed}")])
    return table[references]


def _default(spec: EndpointSpec, name: str, fallback: int) -> Any:
    param = spec.params.get(name)
    return fallback if param is None or param.default is None else param.default


def _round(value: Decimal) -> float:
    return float(value.quantize(_SIX, rounding=ROUND_HALF_UP))


def _usd(value: float | None) -> str:
    if value is None:
        return "$?"
    text = f"{value:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def price_rows(prices: PriceTable | None = None) -> list[dict[str, Any]]:
    """The price table as rows (priced first, then unpriced), each with its rule, its
    source and the date it was checked: what ``fal-assets prices`` prints."""
    table = prices if prices is not None else load_prices()
    rows: list[dict[str, Any]] = []
    for endpoint, entry in sorted(table.prices.items()):
        if entry.unit == "step":
            rule = f"{_usd(float(entry.price))}/step"
            if entry.reference_multipliers:
                rule += " x refs " + ", ".join(f"{k}: {v:g}" for k, v in sorted(entry.reference_multipliers.items()))
        elif entry.unit == "image":
            rule = f"{_usd(float(entry.price))}/image"
        elif entry.unit == "second":
            rule = f"{_usd(float(entry.price))}/s of video"
        else:
            rule = f"{_usd(float(entry.price))}/MP"
            if entry.extra_megapixel_price is not None:
                rule = f"{_usd(float(entry.price))} first MP + {_usd(float(entry.extra_megapixel_price))}/extra MP"
            rule += " (" + " + ".join(entry.billed_on) + ")"
            if entry.input_megapixels is not None:
                rule += f", each input = {entry.input_megapixels} MP"
        rows.append({"endpoint": endpoint, "price": rule, "source": entry.source, "checked": entry.checked.isoformat()})
    for endpoint, unknown in sorted(table.unpriced.items()):
        rows.append({"endpoint": endpoint, "price": "unpriced (estimate refuses it)", "source": unknown.source,
                     "checked": unknown.checked.isoformat()})
    return rows
