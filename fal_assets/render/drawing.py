"""Display lists in head units (the head is 1 unit tall, y grows downwards): shape
helpers, layout on a canvas, and supersampled drawing with a LANCZOS downscale."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
OUTLINE: RGB = (30, 26, 40)
LIGHT = np.array([-0.6, -0.8])  # light comes from the upper left


@dataclass
class Drawing:
    """Display list in head units: (kind, points, colour, width) in paint order."""

    ops: list[tuple[str, np.ndarray, RGB, float]] = field(default_factory=list)
    lift: float = 0.0
    head_top: float = 0.0
    chest: float = 0.0
    head_x: float = 0.0
    ow: float = 0.045
    chin: float = 0.0

    def poly(self, pts: np.ndarray, colour: RGB) -> None:
        self.ops.append(("poly", np.asarray(pts, float), colour, 0.0))

    def line(self, pts: np.ndarray, colour: RGB, width: float) -> None:
        self.ops.append(("line", np.asarray(pts, float), colour, width))

    def bounds(self) -> tuple[float, float, float, float]:
        allp = np.concatenate([p for _, p, _, _ in self.ops])
        pad = np.array([max((w for _, _, _, w in self.ops), default=0.0) / 2] * 2)
        lo, hi = allp.min(0) - pad, allp.max(0) + pad
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    def mirrored(self) -> "Drawing":
        flip = np.array([-1.0, 1.0])
        out = Drawing([(k, p * flip, c, w) for k, p, c, w in self.ops], self.lift, self.head_top, self.chest, -self.head_x, self.ow, self.chin)
        return out

    def seen_from(self, camera: str | None) -> "Drawing":
        """Foreshortened for a camera above (``"high"``: the head near and large, the feet
        far) or below (``"low"``); ``None`` is the drawing itself."""
        if camera not in ("high", "low"):
            return self
        x0, y0, x1, y1 = self.bounds()
        cx, h = (x0 + x1) / 2, max(y1 - y0, 1e-6)
        near, far = (1.12, 0.78) if camera == "high" else (0.84, 1.1)  # width scale at the top, at the bottom
        squash = 0.18 if camera == "high" else -0.1  # how much the lower part is compressed (<0: stretched)

        def warp(y: np.ndarray) -> np.ndarray:
            t = (y - y0) / h
            return y0 + h * (t - squash * t * t)

        def f(p: np.ndarray) -> np.ndarray:
            t = (p[:, 1] - y0) / h
            return np.stack([cx + (p[:, 0] - cx) * (near + (far - near) * t), warp(p[:, 1])], 1)

        ops = [(k, f(p), c, w) for k, p, c, w in self.ops]
        ht, ch, cn = (float(warp(np.array([v]))[0]) for v in (self.head_top, self.chest, self.chin))
        return Drawing(ops, self.lift, ht, ch, self.head_x, self.ow, cn)

    def rotated(self, degrees: float) -> "Drawing":
        """The drawing turned about the origin (the pelvis); -90 lays a figure down head to the left."""
        r = math.radians(degrees)
        m = np.array([[math.cos(r), math.sin(r)], [-math.sin(r), math.cos(r)]])
        ops = [(k, p @ m, c, w) for k, p, c, w in self.ops]
        x0, y0, x1, y1 = Drawing(ops).bounds()
        # a lying figure has no head-and-chest crop: a close-up frames the whole body
        return Drawing(ops, self.lift, y0, y1, (x0 + x1) / 2, self.ow, y1)


def direction(angle: float) -> np.ndarray:
    a = math.radians(angle)
    return np.array([math.sin(a), math.cos(a)])


def ellipse(c, rx: float, ry: float, rot: float = 0.0, n: int = 40, a0: float = 0.0, a1: float = 360.0) -> np.ndarray:
    t = np.radians(np.linspace(a0, a1, n, endpoint=(a1 - a0) < 360))
    pts = np.stack([rx * np.cos(t), ry * np.sin(t)], 1)
    r = math.radians(rot)
    m = np.array([[math.cos(r), math.sin(r)], [-math.sin(r), math.cos(r)]])
    return pts @ m + np.asarray(c, float)


def capsule(p0, p1, r0: float, r1: float, n: int = 10) -> np.ndarray:
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    a = math.degrees(math.atan2(d[1], d[0])) if np.hypot(*d) > 1e-9 else 90.0
    t1 = np.radians(np.linspace(a - 90, a + 90, n))
    t0 = np.radians(np.linspace(a + 90, a + 270, n))
    end = p1 + r1 * np.stack([np.cos(t1), np.sin(t1)], 1)
    start = p0 + r0 * np.stack([np.cos(t0), np.sin(t0)], 1)
    return np.concatenate([end, start])


def rounded_rect(c, hw: float, hh: float, r: float, n: int = 6) -> np.ndarray:
    """A rectangle (half width ``hw``, half height ``hh``) with corners of radius ``r``."""
    r = max(0.0, min(r, hw, hh))
    cx, cy = float(c[0]), float(c[1])
    pts = []
    for (sx, sy), a0 in (((1, 1), 0), ((-1, 1), 90), ((-1, -1), 180), ((1, -1), 270)):
        ox, oy = cx + sx * (hw - r), cy + sy * (hh - r)
        t = np.radians(np.linspace(a0, a0 + 90, n))
        pts.append(np.stack([ox + r * np.cos(t), oy + r * np.sin(t)], 1))
    return np.concatenate(pts)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """``a`` moved ``t`` of the way towards ``b``."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def bezier(p0, p1, p2, n: int = 14) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def ribbon(path: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """A tapered band along a path (width w0 at the start, w1 at the end)."""
    d = np.gradient(path, axis=0)
    nrm = np.stack([-d[:, 1], d[:, 0]], 1) / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    w = np.linspace(w0, w1, len(path))[:, None] / 2
    return np.concatenate([path + nrm * w, (path - nrm * w)[::-1]])


def shade(c: RGB, f: float = 0.74) -> RGB:
    return tuple(int(round(v * f)) for v in c)  # type: ignore[return-value]


def lighten(c: RGB, f: float) -> RGB:
    return tuple(int(round(v + (255 - v) * f)) for v in c)  # type: ignore[return-value]


def is_dark(c: RGB) -> bool:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] < 60


def layout(d: Drawing, idle: Drawing, width: int, height: int, close_up: bool, face_only: bool = False) -> tuple[float, float, float]:
    """Scale (px per head unit) and the pixel position of the unit origin."""
    margin = max(2.0, 0.045 * min(width, height))
    x0, y0, x1, y1 = d.bounds()
    if close_up and face_only and d.chin > d.head_top:
        roi_h = d.chin - d.head_top
        s = 0.8 * min(height, width) / roi_h
        return s, width / 2 - s * d.head_x, height / 2 - s * (d.head_top + d.chin) / 2
    if close_up:
        roi_h = d.chest - d.head_top
        s = 0.86 * min(height, 1.15 * width) / roi_h
        return s, width / 2 - s * d.head_x, 0.07 * height - s * d.head_top
    ix0, iy0, ix1, iy1 = idle.bounds()
    idle_h = iy1 - iy0
    s = min(0.76 * height / idle_h, (width - 2 * margin) / max(ix1 - ix0, 0.42 * idle_h))
    ground_px = height / 2 + 0.5 * idle_h * s
    ground_u = y1 + d.lift
    if ground_u - y0 > 0:
        s = min(s, (ground_px - margin) / (ground_u - y0))
    s = min(s, (width - 2 * margin) / max(x1 - x0, 1e-6))
    ox = width / 2 - s * (x0 + x1) / 2
    oy = ground_px - s * ground_u
    return s, ox, oy


def rasterise(d: Drawing, width: int, height: int, scale: float, ox: float, oy: float) -> Image.Image:
    """Draw the display list supersampled; returns a transparent RGBA layer of the canvas size."""
    x0, y0, x1, y1 = d.bounds()
    bx0 = max(0, int(math.floor(ox + scale * x0)) - 2)
    by0 = max(0, int(math.floor(oy + scale * y0)) - 2)
    bx1 = min(width, int(math.ceil(ox + scale * x1)) + 2)
    by1 = min(height, int(math.ceil(oy + scale * y1)) + 2)
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if bx1 <= bx0 or by1 <= by0:
        return layer
    area = (bx1 - bx0) * (by1 - by0)
    ss = 4 if area < 150_000 else 3 if area < 700_000 else 2 if area < 4_000_000 else 1
    region = Image.new("RGBA", ((bx1 - bx0) * ss, (by1 - by0) * ss), (0, 0, 0, 0))
    draw = ImageDraw.Draw(region)
    k = scale * ss
    shift = np.array([(ox - bx0) * ss, (oy - by0) * ss])
    for kind, pts, colour, w in d.ops:
        xy = pts * k + shift
        flat = [tuple(p) for p in xy.round(2).tolist()]
        fill = (*colour, 255)
        if kind == "poly":
            if len(flat) >= 3:
                draw.polygon(flat, fill=fill)
        else:
            width_px = max(1, int(round(w * k)))
            draw.line(flat, fill=fill, width=width_px, joint="curve")
            if width_px > 3:
                r = width_px / 2
                for x, y in (flat[0], flat[-1]):
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    small = region.resize((bx1 - bx0, by1 - by0), Image.Resampling.LANCZOS)
    layer.paste(small, (bx0, by0))
    return layer
