"""Enclosed background: the holes a figure encloses (between an arm and the body,
between crossed legs, beside a ponytail) that keying from the border cannot reach.

A hole the colour of the background is background only when the figure tells it
apart from its own white parts. Outlined art does: the figure meets the outer
background along one line colour (the outline), and a hole is bounded by that same
line, while a white part (an eye's highlight, a white shirt, a white sleeve) meets
the figure's fill colours (the iris, the shading, the skin). So a hole is keyed when

1. the figure is outlined: at least ``MIN_OUTLINE_SHARE`` of the pixels just inside
   the silhouette have one colour (within ``OUTLINE_DISTANCE``), and it is a line,
   not a fill: somewhere within ``LINE_DEPTH`` px further in, that colour's share
   falls to ``LINE_DROP`` times what it was (a uniform blob has no outline);
2. the hole is the background colour as flat as the border's: its median distance to
   the background colour is at most half the keying tolerance;
3. the hole is bounded by the outline like the silhouette is: at least
   ``HOLE_OUTLINE_SHARE`` x the silhouette's share of the pixels just around it have
   the outline colour;
4. its size is a gap's: at least ``MIN_HOLE_FRACTION`` of the figure's area (a small
   highlight in a dark pupil stays) and at most ``MAX_HOLE_FRACTION`` (a flat white
   shirt, outlined all round, is larger than the gaps between limbs: 3% at most in
   the demo characters).

A figure without an outline (a soft 3D render) keeps its enclosed white: there
nothing tells a hole from a white part, and eating a white shirt is worse than a
hole that rembg (``method="rembg"``) can cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Holes:
    """What the search found: the keyed holes' mask and counts for metadata."""

    mask: np.ndarray
    keyed: int
    kept: int
    outline: tuple[int, int, int] | None

    def details(self) -> dict:
        out = {"enclosed_keyed": self.keyed, "enclosed_kept": self.kept}
        if self.outline is not None:
            out["outline_colour"] = list(self.outline)
        return out


OUTLINE_DISTANCE = 40.0  # RGB distance within which a pixel has the outline colour
MIN_OUTLINE_SHARE = 0.8
LINE_DEPTH = 64  # px inward in which the outline colour must give way to the fill
LINE_DROP = 0.7
HOLE_OUTLINE_SHARE = 0.85
MIN_HOLE_FRACTION = 0.0002
MAX_HOLE_FRACTION = 0.1


def _ring(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Pixels farther than ``inner`` and at most ``outer`` px from ``mask`` (outside it)."""
    to_mask = ndimage.distance_transform_edt(~mask)
    return (to_mask > inner) & (to_mask <= outer)


def outline_colour(rgb: np.ndarray, outer: np.ndarray, near: np.ndarray, edge_width: int) -> tuple[np.ndarray | None, float]:
    """The figure's outline colour and its share just inside the silhouette, or
    ``(None, share)`` when the figure has no outline (see the module's rule 1)."""
    depth = np.ceil(ndimage.distance_transform_edt(~outer)).astype(np.int64)
    first = (depth > edge_width) & (depth <= edge_width + 2)
    if not first.any():
        return None, 0.0
    colour = np.median(rgb[first], axis=0)
    is_line = np.linalg.norm(rgb - colour, axis=2) <= OUTLINE_DISTANCE
    share = float(is_line[first].mean())
    if share < MIN_OUTLINE_SHARE:
        return None, share
    figure = ~near & (depth > edge_width + 2) & (depth <= edge_width + 2 + LINE_DEPTH)
    counts = np.bincount(depth[figure], minlength=edge_width + 3 + LINE_DEPTH)
    lines = np.bincount(depth[figure & is_line], minlength=len(counts))
    seen = counts > 0
    if not seen.any() or (lines[seen] / counts[seen]).min() > LINE_DROP * share:
        return None, share  # one colour all the way in: a fill, not a line
    return colour, share


def find(rgb: np.ndarray, near: np.ndarray, outer: np.ndarray, dist: np.ndarray, tolerance: float, edge_width: int) -> Holes:
    """The enclosed components of ``near`` (pixels within tolerance of the background
    colour, not connected to the border) that are background by the module's rules."""
    holes = near & ~outer
    mask = np.zeros(near.shape, dtype=bool)
    if not holes.any() or not outer.any():
        return Holes(mask, 0, 0, None)
    labels, count = ndimage.label(holes)
    colour, share = outline_colour(rgb, outer, near, edge_width)
    if colour is None:
        return Holes(mask, 0, count, None)
    figure_area = int((~outer).sum())
    min_area, max_area = max(1, MIN_HOLE_FRACTION * figure_area), MAX_HOLE_FRACTION * figure_area
    pad = edge_width + 3
    h, w = near.shape
    keyed = 0
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        ys = slice(max(box[0].start - pad, 0), min(box[0].stop + pad, h))
        xs = slice(max(box[1].start - pad, 0), min(box[1].stop + pad, w))
        hole = labels[ys, xs] == index
        area = int(hole.sum())
        if not min_area <= area <= max_area or np.median(dist[ys, xs][hole]) > tolerance / 2:
            continue
        around = _ring(hole, edge_width, edge_width + 2) & ~near[ys, xs]
        if not around.any():
            continue
        on_line = np.linalg.norm(rgb[ys, xs][around] - colour, axis=1) <= OUTLINE_DISTANCE
        if on_line.mean() >= HOLE_OUTLINE_SHARE * share:
            mask[ys, xs] |= hole
            keyed += 1
    found = tuple(int(round(c)) for c in colour)
    return Holes(mask, keyed, count - keyed, found)  # type: ignore[arg-type]
