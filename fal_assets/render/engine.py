"""Requests in, pictures out: sizes, seeds, the character's look, edits and encoding."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from ..errors import InvalidInput, Problem
from .cues import PARTS, RGB, UNBOUND_ORDER, Cues, parse_prompt
from .drawing import layout, rasterise
from .figure import Look, draw_figure
from .lora import LocalLora, apply_colours, build_factor, lora_traits
from .palette import analyse, figure_of
from .poses import POSE_TABLE, PoseSpec

DEFAULT_SEED = 0
"""The seed of a request without one (fal picks a random one; the local renderer does not)."""
DEFAULT_SIZE = "landscape_4_3"
DEFAULT_FORMAT = "png"
MAX_SIDE = 4096
MAX_IMAGES = 16
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}

DEFAULT_COLOURS: dict[str, RGB] = {
    "hair": (92, 58, 40),
    "skin": (241, 194, 160),
    "outfit": (58, 110, 165),
    "trim": (43, 45, 66),
    "accent": (255, 180, 0),
    "eyes": (43, 45, 66),
    "gear": (196, 58, 58),
}
ROBOT_SCREEN: RGB = (27, 32, 48)
"""A robot's face screen when the prompt gives no face colour."""
IDENTITY_HAIR = ("short", "ponytail", "bob", "spiky", "long", "bun")
IDENTITY_ACCESSORY = (None, "scarf", "backpack", "headphones", None, "cape")

Loras = Sequence[tuple[LocalLora, float]]


def resolve_seed(arguments: Mapping[str, Any]) -> int:
    """The request's seed, or ``DEFAULT_SEED``."""
    seed = arguments.get("seed")
    if seed is None:
        return DEFAULT_SEED
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInput([Problem("local renderer", "arguments.seed", f"got {seed!r}; use a whole number")])
    return seed


def resolve_size(arguments: Mapping[str, Any], inputs: Sequence[Image.Image] = ()) -> tuple[int, int]:
    """Width and height from ``image_size`` (preset, ``"WxH"``, ``{width, height}``,
    ``match_input`` / ``auto``); without one, the first input's size or landscape_4_3."""
    from ..catalog import load_catalog, parse_size

    presets = load_catalog().image_size_presets
    value = arguments.get("image_size")
    field = "arguments.image_size"
    if value is None or value in ("match_input", "auto"):
        if inputs:
            return inputs[0].size
        value = DEFAULT_SIZE
    if isinstance(value, str) and value in presets:
        size = presets[value]
        return size.width, size.height
    if isinstance(value, str):
        parsed = parse_size(value, "local renderer")
        width, height = parsed["width"], parsed["height"]
    elif isinstance(value, Mapping):
        width, height = value.get("width"), value.get("height")
    else:
        raise InvalidInput([Problem("local renderer", field, f"got {value!r}; use a preset ({', '.join(presets)}), \"WxH\" or {{width, height}}")])
    for name, side in (("width", width), ("height", height)):
        if isinstance(side, bool) or not isinstance(side, int) or not 1 <= side <= MAX_SIDE:
            raise InvalidInput([Problem("local renderer", f"{field}.{name}", f"got {side!r}; use a whole number from 1 to {MAX_SIDE}")])
    return int(width), int(height)


def _rng(seed: int, index: int, salt: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed & (2**64 - 1), index, salt]))


def _identity_rng(identity: str) -> np.random.Generator:
    """Randomness keyed by who the character is (never by the seed)."""
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    return np.random.default_rng(np.random.SeedSequence([int(v) for v in np.frombuffer(digest, dtype="<u4")]))


def resolve_look(cues: Cues, seed: int, index: int, loras: Loras = ()) -> Look:
    """Who is drawn, and how this picture varies.

    Identity (colours, body kind, hair, accessory, proportions) comes from the prompt,
    then the LoRAs, then a hash of ``cues.identity``; the seed and ``index`` only move
    the limbs, lean and head tilt a little within the pose (``Look.jitter``).
    """
    learned = lora_traits(list(loras), cues)
    body = cues.body or learned.get("body") or "human"
    robot = body == "robot"
    colours = dict(DEFAULT_COLOURS)
    colours.update(cues.colours)
    explicit = set(cues.colours)
    free = [p for p in UNBOUND_ORDER if p not in explicit]
    for rgb, part in zip(cues.unbound_hex, free):
        colours[part] = rgb
        explicit.add(part)
    if (cues.visor or learned.get("visor") == "1" or robot) and "eyes" not in explicit:
        colours["eyes"] = colours["accent"]  # a visor's glow, a robot's glowing eyes
    if robot and "skin" not in explicit:
        colours["skin"] = ROBOT_SCREEN
    if "gear" not in explicit and "trim" in explicit and not robot:
        colours["gear"] = colours["trim"]
    colours, _ = apply_colours(colours, explicit, list(loras), cues)
    ident = _identity_rng(cues.identity)
    hashed_hair = IDENTITY_HAIR[int(ident.integers(len(IDENTITY_HAIR)))]  # always drawn, so the
    hashed_accessory = IDENTITY_ACCESSORY[int(ident.integers(len(IDENTITY_ACCESSORY)))]  # rest stays put
    heads_u = float(ident.uniform(0.0, 1.0))
    head_scale, shoulder, limb, leg = (float(v) for v in ident.uniform(0.0, 1.0, 4))
    if robot:
        hashed_heads = 2.9 + 0.5 * heads_u
        hashed_accessory = None  # a robot wears what its prompt gives it
    else:
        hashed_heads = 4.6 + 1.2 * heads_u
    jitter = _rng(seed, index, 0x5EED).uniform(-1, 1, 8)
    look = Look(
        colours=colours,
        hair_style="none" if robot else cues.hair_style or learned.get("hair_style") or hashed_hair,
        accessory=cues.accessory or learned.get("accessory") or hashed_accessory,
        heads=cues.heads or _float(learned.get("heads")) or hashed_heads,
        build=cues.build or _float(learned.get("build")) or 1.0,
        head_scale=0.93 + 0.15 * head_scale,
        shoulder=0.88 + 0.24 * shoulder,
        limb=0.86 + 0.28 * limb,
        leg=0.94 + 0.13 * leg,
        visor=cues.visor or learned.get("visor") == "1",
        gloves=cues.gloves or learned.get("gloves") == "1",
        armored=cues.armored or learned.get("armored") == "1",
        body=body,
        belt=cues.belt or not robot,
        expression=cues.expression,
        jitter=tuple(float(v) for v in jitter),
    )
    if loras:  # measured on the still figure, so the factor is part of the identity
        x0, y0, x1, y1 = draw_figure(_still(look), "idle").bounds()
        factor = build_factor(list(loras), cues, (y1 - y0) / (x1 - x0))
        if factor != 1.0:
            look = replace(look, build=look.build * factor)
    return look


def _still(look: Look) -> Look:
    """The character alone: no jitter, a calm face (what scale and build are measured on)."""
    return replace(look, jitter=(0.0,) * len(look.jitter), expression="calm")


def look_for(arguments: Mapping[str, Any], *, index: int = 0, loras: Loras = ()) -> Look:
    """The resolved look of a request's ``index``-th picture (what ``render_image`` draws
    for a text-to-image request). ``look.identity()`` is equal for every seed, index,
    pose and view of prompts with the same identity text."""
    return resolve_look(parse_prompt(arguments.get("prompt")), resolve_seed(arguments), index, loras)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _background(cues: Cues, fallback: RGB | None = (255, 255, 255)) -> tuple[int, int, int, int]:
    if cues.transparent:
        return (0, 0, 0, 0)
    rgb = cues.background or fallback
    return (0, 0, 0, 0) if rgb is None else (*rgb, 255)


def draw_character(
    look: Look, cues: Cues, size: tuple[int, int], background: tuple[int, int, int, int], motion: PoseSpec | None = None
) -> Image.Image:
    """The figure in the prompt's pose (or ``motion``: one frame of a cycle), view and
    camera angle on a flat background (RGBA)."""
    width, height = size
    pose = motion if motion is not None else cues.pose if cues.pose in POSE_TABLE else "idle"
    view = cues.view if motion is None else None  # a cycle turns the body its own way (a run: side on)
    drawing = draw_figure(look, pose, view, cues.facing, arms=cues.arms, holding=cues.holding).seen_from(cues.camera)
    idle = draw_figure(_still(look), "idle", "front", 1)  # one scale and ground line for every pose
    scale, ox, oy = layout(drawing, idle, width, height, cues.close_up, cues.face_only)
    layer = rasterise(drawing, width, height, scale, ox, oy)
    canvas = Image.new("RGBA", size, background)
    canvas.alpha_composite(layer)
    return canvas


def render_image(
    arguments: Mapping[str, Any],
    *,
    index: int = 0,
    loras: Loras = (),
    inputs: Sequence[Image.Image] = (),
) -> Image.Image:
    """One image (``index`` of ``num_images``) for a request; RGB, or RGBA when transparent."""
    cues = parse_prompt(arguments.get("prompt"))
    seed = resolve_seed(arguments)
    size = resolve_size(arguments, inputs)
    if inputs:
        image = edit_image(inputs[0], cues, size, seed=seed, index=index, loras=loras)
    else:
        motion = motion_pose(cues)
        look = resolve_look(cues, seed, index, loras)
        if motion is not None:
            look = _steady(look)
        image = draw_character(look, cues, size, _background(cues), motion)
    return image if image.mode == "RGBA" and image.getextrema()[3][0] < 255 else image.convert("RGB")


def motion_pose(cues: Cues, phase: float | None = None) -> PoseSpec | None:
    """One frame of the motion a prompt asks for (``Motion: ...``), or None for a still.
    ``phase`` (0..1) overrides the prompt's phase (a video clip's time)."""
    from .motion import cycle_of, motion_of, pose_at

    base = cues.pose if cues.pose in POSE_TABLE else "idle"
    found = motion_of(cues.text, base)
    if found is None and phase is None:
        return None
    cycle = found.cycle if found is not None else cycle_of("", base)
    return pose_at(cycle, found.phase if phase is None else phase, base)


def _steady(look: Look) -> Look:
    """A motion frame's look: the seed's jitter damped, so the cycle does not shake."""
    from .motion import MOTION_JITTER

    return replace(look, jitter=tuple(MOTION_JITTER * j for j in look.jitter))


def edit_image(
    source: Image.Image,
    cues: Cues,
    size: tuple[int, int],
    *,
    seed: int = DEFAULT_SEED,
    index: int = 0,
    loras: Loras = (),
    motion_phase: float | None = None,
) -> Image.Image:
    """An edit of ``source``.

    Colour cues (part colours, unbound hex codes, "from X to Y", LoRA colours) recolour
    the matching colours of the input and a background cue swaps its flat background:
    the composition is kept (fitted and centred when ``size`` differs), and every
    ``index`` gives the same picture. A prompt that asks for a pose, view or close-up
    redraws the character found in the input (its colours) in that pose instead.
    """
    old_bg = figure_of(source, max_side=None).background
    try:
        found = analyse([source])
    except ValueError:  # a flat picture: nothing to recolour or to learn from
        found = None
    motion = motion_pose(cues, motion_phase)
    if (cues.pose_explicit and cues.pose != "idle") or cues.view or cues.close_up or motion is not None:
        look = _recast_look(found, cues, seed, index, loras)
        if motion is not None:
            look = _steady(look)
        return draw_character(look, cues, size, _background(cues, old_bg), motion)
    image = _fit(source.convert("RGBA"), size, old_bg)
    if found is None:
        return image if cues.background is None and not cues.transparent else Image.new("RGBA", size, _background(cues))
    arr = np.asarray(image, dtype=np.float32)
    rgb, alpha = arr[..., :3].copy(), arr[..., 3].copy()

    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    centres = found.palette
    for part, src, dst in cues.recolour:
        # "from #FF1493 to ...": a colour of the picture that is the named one is changed,
        # whichever part it was read as; else the named part; else the nearest hue
        exact = min(range(len(centres)), key=lambda i: float(np.abs(centres[i] - np.array(src)).sum())) if len(centres) else None
        if exact is not None and float(np.sqrt(((centres[exact] - np.array(src)) ** 2).sum())) < 24:
            pairs.append((centres[exact], np.array(dst, np.float32)))
        elif part in found.parts:
            pairs.append((np.array(found.parts[part], np.float32), np.array(dst, np.float32)))
        elif len(centres):
            j = min(range(len(centres)), key=lambda i: _hue_distance(centres[i], src))
            if _hue_distance(centres[j], src) < 0.35:
                pairs.append((centres[j], np.array(dst, np.float32)))
    targets = dict(cues.colours)
    for rgb_hex, part in zip(cues.unbound_hex, [p for p in UNBOUND_ORDER if p not in targets and p in found.parts]):
        targets[part] = rgb_hex
    if loras:
        learned = {p: found.parts[p] for p in found.parts}
        blended, _ = apply_colours({**{p: (0, 0, 0) for p in PARTS}, **learned}, set(targets), list(loras), cues)
        for part in learned:
            targets.setdefault(part, blended[part])
    for part, dst in targets.items():
        if part in found.parts:
            pairs.append((np.array(found.parts[part], np.float32), np.array(dst, np.float32)))
    pairs += _shades(pairs, centres)
    if pairs:
        flat = rgb.reshape(-1, 3)
        delta = np.zeros_like(flat)
        for src, dst in pairs:
            d = np.sqrt(((flat - src) ** 2).sum(1))
            w = np.clip(1.0 - d / 70.0, 0.0, 1.0) ** 1.5
            delta += w[:, None] * (dst - src)
        mask = figure_of(Image.fromarray(arr.astype(np.uint8), "RGBA"), max_side=None).mask.reshape(-1)
        flat[mask] = np.clip(flat[mask] + delta[mask], 0, 255)
        rgb = flat.reshape(rgb.shape)
    if cues.background is not None or cues.transparent:
        rgb, alpha = _swap_background(rgb, alpha, old_bg, centres, _background(cues))
    out = np.dstack([rgb, alpha]).round().astype(np.uint8)
    return Image.fromarray(out, "RGBA")


def _shades(pairs: list[tuple[np.ndarray, np.ndarray]], centres: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The shaded tones of each recoloured colour (``k * colour``, how the figure is lit)
    recoloured to ``k * new colour``, so a recolour keeps the shading."""
    out: list[tuple[np.ndarray, np.ndarray]] = []
    taken = [src for src, _ in pairs]
    for src, dst in pairs:
        norm = float(src @ src)
        if norm < 1.0:
            continue
        for c in centres:
            k = float(c @ src) / norm
            if 0.4 <= k < 0.95 and float(np.sqrt(((c - k * src) ** 2).sum())) < 6 and not any(np.allclose(c, t) for t in taken):
                out.append((np.asarray(c, np.float32), np.asarray(dst, np.float32) * k))
                taken.append(c)
    return out


def _recast_look(found, cues: Cues, seed: int, index: int, loras: Loras) -> Look:
    """The look of the character found in an input picture (its colours), redrawn."""
    learned = found.parts if found else {}
    colours = {**learned, **cues.colours}
    if "accent" in learned and "eyes" not in colours and cues.visor:
        colours["eyes"] = learned["accent"]
    recast = Cues(**{**cues.__dict__, "colours": colours})
    return resolve_look(recast, seed, index, loras)


def redraw_source(source: Image.Image, cues: Cues, *, seed: int = DEFAULT_SEED, loras: Loras = ()) -> tuple[Look, tuple[int, int, int, int]]:
    """The look of the character in ``source`` (steadied for motion) and the background to
    draw it on: read once, then drawn in as many motion frames as needed."""
    old_bg = figure_of(source, max_side=None).background
    try:
        found = analyse([source])
    except ValueError:
        found = None
    return _steady(_recast_look(found, cues, seed, 0, loras)), _background(cues, old_bg)


def _hue_distance(a, b) -> float:
    """0..~1.5: hue first for coloured pairs ("pink" finds hot pink, not skin)."""
    import colorsys

    h1, s1, v1 = colorsys.rgb_to_hsv(*(float(x) / 255 for x in a))
    h2, s2, v2 = colorsys.rgb_to_hsv(*(float(x) / 255 for x in b))
    dh = min(abs(h1 - h2), 1 - abs(h1 - h2)) * 2
    return dh * min(s1, s2) * 2 + 0.3 * abs(s1 - s2) + 0.3 * abs(v1 - v2)


def _near(mask: np.ndarray, steps: int = 2) -> np.ndarray:
    """``mask`` grown by ``steps`` pixels."""
    m = mask.copy()
    for _ in range(steps):
        p = np.pad(m, 1, constant_values=False)
        m = m | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
    return m


def _fit(image: Image.Image, size: tuple[int, int], bg: RGB | None) -> Image.Image:
    if image.size == size:
        return image
    f = min(size[0] / image.width, size[1] / image.height)
    scaled = image.resize((max(1, round(image.width * f)), max(1, round(image.height * f))), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", size, (0, 0, 0, 0) if bg is None else (*bg, 255))
    canvas.alpha_composite(scaled, ((size[0] - scaled.width) // 2, (size[1] - scaled.height) // 2))
    return canvas


def _swap_background(rgb, alpha, old_bg: RGB | None, centres: np.ndarray, new_bg: tuple[int, int, int, int]):
    """Replace the flat background, unmixing anti-aliased edges against the nearest colour."""
    if old_bg is None:  # transparent input: composite over the new background
        a = alpha[..., None] / 255.0
        if new_bg[3] == 0:
            return rgb, alpha
        return rgb * a + np.array(new_bg[:3], np.float32) * (1 - a), np.full_like(alpha, 255.0)
    bg = np.array(old_bg, np.float32)
    flat = rgb.reshape(-1, 3)
    a = np.ones(len(flat), np.float32)
    near = np.abs(flat - bg).max(1) <= 3
    a[near] = 0.0
    edge = ~near & _near(near.reshape(alpha.shape)).reshape(-1)
    if len(centres) and edge.any():
        c = flat[edge]
        best_a, best_err = np.ones(len(c), np.float32), np.full(len(c), np.inf, np.float32)
        for f in centres:
            seg = f - bg
            denom = max(float((seg**2).sum()), 1e-6)
            t = np.clip(((c - bg) @ seg) / denom, 0, 1)
            err = ((bg + t[:, None] * seg - c) ** 2).sum(1)
            better = err < best_err
            best_a[better], best_err[better] = t[better], err[better]
        a[edge] = np.where(best_err < 40.0**2, best_a, 1.0)
    a2 = a.reshape(alpha.shape)
    if new_bg[3] == 0:
        fg = (rgb - (1 - a2[..., None]) * bg) / np.maximum(a2[..., None], 1e-3)
        return np.clip(fg, 0, 255), np.clip(a2 * 255.0, 0, 255)
    new = rgb + (1 - a2[..., None]) * (np.array(new_bg[:3], np.float32) - bg)
    return np.clip(new, 0, 255), alpha


def encode(image: Image.Image, output_format: str = DEFAULT_FORMAT) -> tuple[bytes, str]:
    """Bytes and content type; JPEG flattens transparency onto white."""
    fmt = output_format.lower()
    if fmt not in CONTENT_TYPES:
        raise InvalidInput([Problem("local renderer", "arguments.output_format", f"got {output_format!r}; use png, jpeg or webp")])
    buffer = io.BytesIO()
    if fmt in ("jpeg", "jpg"):
        if image.mode == "RGBA":
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image.convert("RGB").save(buffer, "JPEG", quality=95)
    elif fmt == "webp":
        image.save(buffer, "WEBP", quality=90, method=4)
    else:
        image.save(buffer, "PNG")
    return buffer.getvalue(), CONTENT_TYPES[fmt]


def render_request(
    endpoint: str,
    arguments: Mapping[str, Any],
    *,
    loras: Loras = (),
    inputs: Sequence[Image.Image] = (),
) -> list[tuple[bytes, str]]:
    """Every image of a request, encoded: ``[(bytes, content_type), ...]``.

    The endpoint's catalog entry supplies the default output format and size rules
    (e.g. ``match_input`` for edits); unknown endpoints use this module's defaults.
    """
    args = dict(arguments)
    if (args.get("image_urls") or args.get("image_url")) and not inputs:
        raise InvalidInput([Problem(endpoint, "arguments.image_urls", "the local renderer needs the decoded input images; none were passed")])
    fmt, size = _endpoint_defaults(endpoint, args, inputs)
    fmt = args.get("output_format") or fmt
    count = args.get("num_images", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_IMAGES:
        raise InvalidInput([Problem(endpoint, "arguments.num_images", f"got {count!r}; use a whole number from 1 to {MAX_IMAGES}")])
    if size is not None:
        args["image_size"] = {"width": size[0], "height": size[1]}
    return [encode(render_image(args, index=i, loras=loras, inputs=inputs), fmt) for i in range(count)]


def _endpoint_defaults(endpoint: str, args: dict[str, Any], inputs: Sequence[Image.Image]) -> tuple[str, tuple[int, int] | None]:
    from ..catalog import load_catalog, output_size

    catalog = load_catalog()
    if endpoint not in catalog:
        return DEFAULT_FORMAT, None
    spec = catalog.get(endpoint)
    param = spec.params.get("output_format")
    fmt = (param.default if param is not None and param.default else None) or DEFAULT_FORMAT
    if spec.output_size is None:
        return fmt, None
    return fmt, output_size(endpoint, args, [im.size for im in inputs] or None)
