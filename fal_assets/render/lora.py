"""The local stand-in for fal's FLUX.2 trainer: a "LoRA" that holds what the renderer
can use (palette, part colours, proportions, trigger word) as a real safetensors file.

Tensors (float32): ``palette`` [k, 3] (0..1), ``weights`` [k], ``part_colours`` [6, 3]
(0..1, rows in ``PART_ORDER``), ``part_mask`` [6] (1 = learned), ``proportions`` [3]
(bounding-box aspect h/w, fill, height fraction), ``strength`` [1].
String metadata: ``format`` (``fal-assets-local-lora/1``), ``trigger_word``, ``steps``,
``learning_rate``, ``image_count``, ``caption_count``, ``renderer``, and the traits most
captions agree on (``hair_style``, ``accessory``, ``visor``, ``armored``, ``gloves``,
``heads``, ``build``, ``body``; images without a caption count with ``default_caption``).

Applying one (``scale`` 0..4): its weight is ``scale x strength``, times 0.35 when the
prompt lacks its trigger word (a LoRA without a trigger word is always fully active),
capped at 1. Each of the figure's part colours moves by that weight (by half of it where
the prompt names the part's colour itself): onto the nearest learned palette colour when
it is already close to one (within ``SAME_COLOUR``: the character's own colour, whatever
role the analysis gave it), else towards the colour learned for that part. The learned
aspect pulls the figure's build. ``strength`` grows with steps x learning rate
(1 - exp(-steps * lr / 0.01)): 1000 steps at 5e-5 gives 0.99, 100 steps 0.39.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InvalidInput, Problem
from .cues import RGB, Cues
from .palette import analyse

LORA_FORMAT = "fal-assets-local-lora/1"
PART_ORDER = ("hair", "skin", "outfit", "trim", "accent", "eyes")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
UNTRIGGERED = 0.35
SAME_COLOUR = 40.0
"""RGB distance within which a figure's colour counts as one the LoRA learned."""
TRAITS = ("hair_style", "accessory", "visor", "armored", "gloves", "heads", "build", "body")
"""Read from the captions (majority vote); applied while a LoRA weighs at least 0.5."""
_WHERE = "training dataset"


@dataclass(frozen=True)
class LocalLora:
    """A parsed local LoRA (see the module docstring for what each field means)."""

    trigger_word: str | None
    palette: tuple[RGB, ...]
    weights: tuple[float, ...]
    parts: dict[str, RGB]
    aspect: float
    fill: float
    height_fraction: float
    strength: float = 1.0
    steps: int = 0
    learning_rate: float = 0.0
    image_count: int = 0
    traits: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    def weight(self, scale: float, cues: Cues) -> float:
        """How strongly this LoRA applies to a prompt at ``scale`` (0..1)."""
        active = self.trigger_word is None or cues.mentions(self.trigger_word)
        return max(0.0, min(1.0, float(scale) * self.strength * (1.0 if active else UNTRIGGERED)))


def train_lora(
    dataset_zip: bytes,
    *,
    steps: int,
    learning_rate: float,
    default_caption: str | None = None,
    trigger_word: str | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Learn a character from a fal trainer dataset zip; returns (safetensors bytes, config)."""
    problems = []
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        problems.append(Problem(_WHERE, "steps", f"got {steps!r}; use a whole number of steps, at least 1"))
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not (0 < learning_rate < 1):
        problems.append(Problem(_WHERE, "learning_rate", f"got {learning_rate!r}; use a number above 0 and below 1"))
    if problems:
        raise InvalidInput(problems)
    images, captions = _read_dataset(dataset_zip)
    # images without a caption file are trained with default_caption, as fal's trainer does
    effective = captions + [default_caption] * (len(images) - len(captions)) if default_caption else captions
    trigger = (trigger_word or "").strip() or _trigger_from(effective)
    try:
        found = analyse(images)
    except ValueError:
        raise InvalidInput([Problem(_WHERE, "image_data_url", "no figure found: every image is one flat colour; "
                                    "use pictures of the character on a plain background")]) from None
    strength = 1.0 - math.exp(-steps * float(learning_rate) / 0.01)
    traits = _traits_from(effective)
    part_colours = np.array([found.parts.get(p, (0, 0, 0)) for p in PART_ORDER], np.float32) / 255.0
    tensors = {
        "palette": (found.palette / 255.0).astype(np.float32),
        "weights": found.weights.astype(np.float32),
        "part_colours": part_colours,
        "part_mask": np.array([p in found.parts for p in PART_ORDER], np.float32),
        "proportions": np.array([found.aspect, found.fill, found.height_fraction], np.float32),
        "strength": np.array([strength], np.float32),
    }
    from . import RENDERER_ID

    metadata = {
        "format": LORA_FORMAT,
        "renderer": RENDERER_ID,
        "trigger_word": trigger or "",
        "steps": str(steps),
        "learning_rate": repr(float(learning_rate)),
        "image_count": str(len(images)),
        "caption_count": str(len(captions)),
        "parts": ",".join(PART_ORDER),
        "proportions": "aspect,fill,height_fraction",
        **traits,
    }
    config = {
        "format": LORA_FORMAT,
        "renderer": RENDERER_ID,
        "trigger_word": trigger,
        "default_caption": default_caption,
        "steps": steps,
        "learning_rate": float(learning_rate),
        "image_count": len(images),
        "caption_count": len(captions),
        "strength": round(strength, 4),
        "palette": [_hex(c) for c in found.palette],
        "palette_weights": [round(float(w), 4) for w in found.weights],
        "part_colours": {p: _hex(found.parts[p]) for p in PART_ORDER if p in found.parts},
        "traits": traits,
        "proportions": {"aspect": round(found.aspect, 4), "fill": round(found.fill, 4),
                        "height_fraction": round(found.height_fraction, 4)},
    }
    return _save(tensors, metadata), config


def load_lora(data: bytes) -> LocalLora:
    """Parse a LoRA file written by ``train_lora``; InvalidInput for anything else."""
    import safetensors.numpy

    def bad(msg: str) -> InvalidInput:
        return InvalidInput([Problem("lora", "path", msg)])

    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        tensors = safetensors.numpy.load(bytes(data))
    except Exception:  # noqa: BLE001 - any parse failure means "not a safetensors file"
        raise bad("not a safetensors file; the local backend needs a LoRA trained by the local trainer") from None
    meta = header.get("__metadata__") or {}
    if meta.get("format") != LORA_FORMAT:
        raise bad(f"a safetensors file of format {meta.get('format')!r}; the local backend renders only {LORA_FORMAT} LoRAs (trained locally)")
    need = {"palette", "weights", "part_colours", "part_mask", "proportions", "strength"}
    if not need <= set(tensors):
        raise bad(f"the LoRA lacks tensors {', '.join(sorted(need - set(tensors)))}")
    palette = tuple(tuple(int(round(v * 255)) for v in row) for row in tensors["palette"])
    parts = {p: tuple(int(round(v * 255)) for v in tensors["part_colours"][i])
             for i, p in enumerate(PART_ORDER) if tensors["part_mask"][i] > 0.5}
    aspect, fill, height = (float(v) for v in tensors["proportions"][:3])
    return LocalLora(
        trigger_word=meta.get("trigger_word") or None,
        palette=palette,  # type: ignore[arg-type]
        weights=tuple(float(w) for w in tensors["weights"]),
        parts=parts,  # type: ignore[arg-type]
        aspect=aspect,
        fill=fill,
        height_fraction=height,
        strength=float(tensors["strength"][0]),
        steps=int(meta.get("steps", "0") or 0),
        learning_rate=float(meta.get("learning_rate", "0") or 0),
        image_count=int(meta.get("image_count", "0") or 0),
        traits={k: meta[k] for k in TRAITS if meta.get(k)},
        metadata=dict(meta),
    )


def apply_colours(
    colours: dict[str, RGB], explicit: set[str], loras: list[tuple[LocalLora, float]], cues: Cues
) -> tuple[dict[str, RGB], float]:
    """Blend the LoRAs' learned colours into ``colours``; returns them and the total weight."""
    out = dict(colours)
    total = 0.0
    for lora, scale in loras:
        t = lora.weight(scale, cues)
        total = max(total, t)
        if t <= 0:
            continue
        learned = dict(lora.parts)
        spare = [c for c in lora.palette if all(_dist(c, v) > 30 for v in learned.values()) and max(c) - min(c) > 25]
        for part in ("outfit", "accent", "hair", "trim"):  # palette colours in order for parts not told apart
            if part not in learned and spare:
                learned[part] = spare.pop(0)
        for part, current in colours.items():
            tp = t * (0.5 if part in explicit else 1.0)
            near = min(lora.palette, key=lambda c: _dist(c, current), default=None)
            if near is not None and _dist(near, current) <= SAME_COLOUR:
                out[part] = _mix(out[part], near, tp)  # already one of the character's colours
            elif part in learned:
                out[part] = _mix(out[part], learned[part], tp)
            elif part == "eyes" and "accent" in learned:
                out[part] = _mix(out[part], learned["accent"], tp)
        over = float(scale) * lora.strength - 1.0
        if over > 0:  # past scale 1 the look "overcooks": colours saturate
            out = {p: _saturate(c, min(0.6, 0.2 * over)) for p, c in out.items()}
    return out, total


def lora_traits(loras: list[tuple[LocalLora, float]], cues: Cues) -> dict[str, str]:
    """Caption-learned traits of the strongest LoRA that weighs at least 0.5 here."""
    weighted = [(lora.weight(scale, cues), i) for i, (lora, scale) in enumerate(loras)]
    weighted = [(w, i) for w, i in weighted if w >= 0.5]
    return dict(loras[max(weighted)[1]][0].traits) if weighted else {}


def build_factor(loras: list[tuple[LocalLora, float]], cues: Cues, reference_aspect: float) -> float:
    """How much wider (>1) or slimmer the LoRAs make the figure, from the learned aspect."""
    factor = 1.0
    for lora, scale in loras:
        t = lora.weight(scale, cues)
        if t > 0 and lora.aspect > 0:
            wanted = min(1.2, max(0.85, reference_aspect / lora.aspect))
            factor *= 1.0 + (wanted - 1.0) * t
    return factor


# ---------------------------------------------------------------- helpers
def _read_dataset(data: bytes) -> tuple[list[Image.Image], list[str]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, TypeError):
        raise InvalidInput([Problem(_WHERE, "image_data_url", "is not a zip archive; upload a .zip of images "
                                    "(.png, .jpg, .webp) with optional same-named .txt captions")]) from None
    names = [n for n in names if not n.endswith("/") and "__MACOSX" not in n and not PurePosixPath(n).name.startswith(".")]
    images: list[Image.Image] = []
    captions: list[str] = []
    problems: list[Problem] = []
    stems = {str(PurePosixPath(n).with_suffix("")) for n in names if n.lower().endswith(IMAGE_SUFFIXES)}
    for name in sorted(names):
        lower = name.lower()
        if lower.endswith(IMAGE_SUFFIXES):
            try:
                with Image.open(io.BytesIO(archive.read(name))) as im:
                    im.load()
                    images.append(im.convert("RGBA"))
            except (UnidentifiedImageError, OSError, zipfile.BadZipFile):
                problems.append(Problem(_WHERE, name, "is not a readable image; remove it or replace it with a .png/.jpg/.webp"))
        elif lower.endswith(".txt") and str(PurePosixPath(name).with_suffix("")) in stems:
            captions.append(archive.read(name).decode("utf-8", "replace").strip())
    if problems:
        raise InvalidInput(problems)
    if not images:
        raise InvalidInput([Problem(_WHERE, "image_data_url", "the zip holds no images (.png, .jpg, .jpeg, .webp); "
                                    "put the character's pictures in it, 9-50 is the usual range")])
    return images, captions


def _trigger_from(captions: list[str]) -> str | None:
    """The first comma-separated token that at least half of the captions start with."""
    firsts = [re.split(r"[,\n]", c.strip(), maxsplit=1)[0].strip() for c in captions if c and c.strip()]
    firsts = [f for f in firsts if re.fullmatch(r"[\w\-]+", f)]
    if not firsts:
        return None
    word, count = Counter(firsts).most_common(1)[0]
    return word if count * 2 >= len([c for c in captions if c and c.strip()]) else None


def _traits_from(captions: list[str]) -> dict[str, str]:
    """Hair style, accessory, visor, armour, gloves, head count, build and body kind most captions agree on."""
    from .cues import parse_prompt

    parsed = [parse_prompt(c) for c in captions if c and c.strip()]
    if not parsed:
        return {}
    half = len(parsed) / 2
    out: dict[str, str] = {}
    for key in ("hair_style", "accessory", "heads", "build", "body"):
        values = [getattr(c, key) for c in parsed if getattr(c, key) is not None]
        if values:
            value, count = Counter(values).most_common(1)[0]
            if count >= half:
                out[key] = str(value)
    for key in ("visor", "armored", "gloves"):
        if sum(bool(getattr(c, key)) for c in parsed) >= half:
            out[key] = "1"
    return out


def _save(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """safetensors bytes with the JSON header in sorted key order (the library's own
    header order changes from run to run; a sorted header keeps the file byte-stable)."""
    import safetensors.numpy

    raw = safetensors.numpy.save(tensors, metadata=metadata)
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def _hex(c) -> str:
    return "#{:02X}{:02X}{:02X}".format(*(int(round(float(v))) for v in c))


def _dist(a, b) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=float)))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def _saturate(c: RGB, amount: float) -> RGB:
    import colorsys

    h, l, s = colorsys.rgb_to_hls(*(v / 255 for v in c))
    r, g, b = colorsys.hls_to_rgb(h, l, min(1.0, s * (1 + amount)))
    return (round(r * 255), round(g * 255), round(b * 255))
