"""Reading a character back out of images: background, figure mask, dominant colours
(k-means on numpy), which colour plays which part, and the figure's proportions.

Used by LoRA training (many images) and by edits (one image).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image

RGB = tuple[int, int, int]
MAX_SIDE = 320  # images are analysed at this size at most
_BG_TOLERANCE = 28


@dataclass(frozen=True)
class Figure:
    """One analysed image: RGB pixels, figure mask and the background colour (None: alpha)."""

    rgb: np.ndarray  # (h, w, 3) float
    mask: np.ndarray  # (h, w) bool
    background: RGB | None
    bbox: tuple[int, int, int, int] | None  # x0, y0, x1, y1 (exclusive)


@dataclass(frozen=True)
class Analysis:
    palette: np.ndarray  # (k, 3) float, 0..255, heaviest first
    weights: np.ndarray  # (k,) sums to 1
    parts: dict[str, RGB]  # colours whose role could be told (hair, skin, outfit, trim, accent, eyes)
    aspect: float  # figure bounding box height / width of the upright images (75th percentile)
    fill: float  # share of the bounding box the figure covers (median)
    height_fraction: float  # bounding box height / image height (median)
    images: int


def figure_of(image: Image.Image, max_side: int | None = MAX_SIDE) -> Figure:
    """Split an image into figure and background (flat border colour, or alpha)."""
    if max_side and max(image.size) > max_side:
        f = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * f)), max(1, round(image.height * f))), Image.Resampling.BOX)
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    rgb, alpha = rgba[..., :3], rgba[..., 3]
    if alpha.min() < 128:
        mask, background = alpha >= 128, None
    else:
        border = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3), rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])
        bg = np.median(border, axis=0)
        mask = np.abs(rgb - bg).max(axis=2) > _BG_TOLERANCE
        background = tuple(int(round(v)) for v in bg)  # type: ignore[assignment]
    ys, xs = np.nonzero(mask)
    bbox = None if len(ys) < max(4, 0.001 * mask.size) else (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Figure(rgb, mask, background, bbox)


def kmeans(pixels: np.ndarray, k: int = 8, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Dominant colours of ``pixels`` (n, 3): centres (m <= k, 3) and each pixel's label.

    Runs on a 5-bit colour histogram (deterministic farthest-point start), then sets
    each centre to the mean of its most common 5-bit bin, so flat fills come back exact.
    """
    px = np.asarray(pixels, dtype=np.float32).reshape(-1, 3)
    if len(px) == 0:
        return np.zeros((0, 3), np.float32), np.zeros(0, np.int64)
    q = (px.astype(np.int32) >> 3)
    key = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    sums = np.zeros((len(uniq), 3), np.float64)
    np.add.at(sums, inverse, px)
    colours = sums / counts[:, None]
    keep = counts >= max(2, 0.0015 * len(px))
    cand, cw = (colours[keep], counts[keep]) if keep.any() else (colours, counts)
    centres = [cand[np.argmax(cw)]]
    while len(centres) < k:
        d2 = ((cand[:, None, :] - np.array(centres)[None]) ** 2).sum(2).min(1)
        if d2.max() < 30.0**2:
            break
        centres.append(cand[np.argmax(d2 * cw**0.25)])
    c = np.array(centres)
    for _ in range(iterations):
        lab = ((cand[:, None, :] - c[None]) ** 2).sum(2).argmin(1)
        for j in range(len(c)):
            sel = lab == j
            if sel.any():
                c[j] = (cand[sel] * cw[sel, None]).sum(0) / cw[sel].sum()
    labels = ((px[:, None, :] - c[None].astype(np.float32)) ** 2).sum(2).argmin(1)
    for j in range(len(c)):
        sel = labels == j
        if sel.any():
            ks, kc = np.unique(key[sel], return_counts=True)
            mode = ks[np.argmax(kc)]
            c[j] = px[sel & (key == mode)].mean(0)
    return c.astype(np.float32), labels


def _merge(centres: np.ndarray, weights: np.ndarray, min_dist: float = 20.0, min_weight: float = 0.004):
    order = np.argsort(-weights, kind="stable")
    kept_c: list[np.ndarray] = []
    kept_w: list[float] = []
    for i in order:
        for n, kc in enumerate(kept_c):
            if np.linalg.norm(kc - centres[i]) < min_dist:
                kept_w[n] += float(weights[i])
                break
        else:
            kept_c.append(centres[i].copy())
            kept_w.append(float(weights[i]))
    c, w = np.array(kept_c, np.float32).reshape(-1, 3), np.array(kept_w, np.float32)
    keep = w >= min_weight
    c, w = c[keep], w[keep]
    return c, w / max(w.sum(), 1e-9)


def _eroded(mask: np.ndarray, steps: int = 2) -> np.ndarray:
    m = mask.copy()
    for _ in range(steps):
        p = np.pad(m, 1, constant_values=False)
        m = m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m


def _hsv(c) -> tuple[float, float, float]:
    return colorsys.rgb_to_hsv(*(float(v) / 255 for v in c))


def _skin_like(c) -> bool:
    h, s, v = _hsv(c)
    return (h <= 55 / 360 or h >= 340 / 360) and 0.1 <= s <= 0.75 and v >= 0.35


def _chroma(c) -> float:
    return float(np.max(c) - np.min(c))


def analyse(images: list[Image.Image], k: int = 12) -> Analysis:
    """Palette, part colours and proportions of the figure(s) in ``images``."""
    figures = [f for f in (figure_of(im) for im in images) if f.bbox is not None]
    if not figures:
        raise ValueError("no figure found: every image is a flat background")
    per_image = [f.rgb[f.mask] for f in figures]
    step = [max(1, len(p) // 6000) for p in per_image]
    sample = np.concatenate([p[::s] for p, s in zip(per_image, step)])
    centres, _ = kmeans(sample, k)
    # label every figure pixel, and vote for roles by where in the figure each colour sits
    n = len(centres)
    totals = np.zeros(n)
    bands = {b: np.zeros(n) for b in ("crown", "head", "torso", "legs")}
    edge = np.zeros(n)
    for f in figures:
        px = f.rgb[f.mask]
        lab = ((px[:, None, :] - centres[None]) ** 2).sum(2).argmin(1)
        counts = np.bincount(lab, minlength=n).astype(float)
        totals += counts / counts.sum()
        x0, y0, x1, y1 = f.bbox  # type: ignore[misc]
        ys = (np.nonzero(f.mask)[0] - y0) / max(1, y1 - y0)
        inner = _eroded(f.mask)[f.mask]  # the silhouette's outline does not vote
        edge += np.bincount(lab[~inner], minlength=n)
        for band, (lo, hi) in {"crown": (0, 0.07), "head": (0, 0.2), "torso": (0.3, 0.5), "legs": (0.62, 1.01)}.items():
            sel = (ys >= lo) & (ys < hi) & inner
            if sel.any():
                bands[band] += np.bincount(lab[sel], minlength=n) / sel.sum()
    all_counts = np.zeros(n)
    for f in figures:
        px = f.rgb[f.mask]
        all_counts += np.bincount(((px[:, None, :] - centres[None]) ** 2).sum(2).argmin(1), minlength=n)
    edge_share = edge / np.maximum(all_counts, 1)
    weights = totals / totals.sum()
    usable = (edge_share < 0.45) & (weights >= 0.004)

    parts: dict[str, RGB] = {}
    taken: set[int] = set()

    def shade_of_taken(j: int) -> bool:  # the shadow or highlight tone of a colour already placed
        for t in taken:
            a, b = centres[j].astype(float), centres[t].astype(float)
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            if na > 1 and nb > 1 and 0.55 <= na / nb <= 0.92 and a @ b / (na * nb) > 0.995:
                return True
            lift, room = a - b, 255.0 - b  # a = b + f * (white - b)
            nl, nr = np.linalg.norm(lift), np.linalg.norm(room)
            if nl > 1 and nr > 1 and 0.08 <= nl / nr <= 0.45 and lift @ room / (nl * nr) > 0.99:
                return True
        return False

    def pick(part: str, score: np.ndarray, ok=lambda j: True, floor: float = 1e-9) -> None:
        best, best_score = None, floor
        for j in range(n):
            if usable[j] and j not in taken and ok(j) and not shade_of_taken(j) and score[j] > best_score:
                best, best_score = j, score[j]
        if best is not None:
            taken.add(best)
            parts[part] = tuple(int(round(v)) for v in centres[best])  # type: ignore[assignment]

    pick("hair", bands["crown"], floor=0.05 * len(figures))
    pick("outfit", bands["torso"], floor=0.05 * len(figures))
    pick("skin", bands["head"], ok=lambda j: _skin_like(centres[j]), floor=0.03 * len(figures))
    pick("trim", bands["legs"], floor=0.08 * len(figures))
    pick("accent", np.array([_chroma(c) for c in centres]) * (weights >= 0.003), floor=60)
    pick("eyes", bands["head"] * np.array([_chroma(c) >= 80 and not _skin_like(c) for c in centres]), floor=0.03 * len(figures))

    inside = edge_share < 0.6  # anti-aliased rims and the silhouette outline are no character colours
    palette, pw = _merge(centres[inside], weights[inside])
    aspects = [(f.bbox[3] - f.bbox[1]) / max(1, f.bbox[2] - f.bbox[0]) for f in figures]  # type: ignore[index]
    fills = [f.mask.sum() / max(1, (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])) for f in figures]  # type: ignore[index]
    heights = [(f.bbox[3] - f.bbox[1]) / f.mask.shape[0] for f in figures]  # type: ignore[index]
    return Analysis(palette, pw, parts, float(np.percentile(aspects, 75)), float(np.median(fills)), float(np.median(heights)), len(figures))
