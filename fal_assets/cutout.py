"""Cutouts: one interface, two methods (rembg's models, or keying a flat background).

``make_cutter(config)`` picks one; ``cutter.cut(image)`` returns a ``CutoutResult``
(an RGBA image, the method, and details for metadata).

rembg is imported lazily: it imports pymatting, whose Numba code can take ~30-60 s
to compile on a cold machine. ``NUMBA_CACHE_DIR`` is pointed at a kept folder
before that import (``~/.cache/fal-assets/numba`` unless already set), so only the
first import on a machine pays it. One rembg session is built per process and
model (``new_session`` once); every ``remove`` call gets it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image

from . import enclosed
from .errors import InvalidInput, Problem

METHODS = ("auto", "key", "rembg")
CUSTOM_MODELS = ("u2net_custom", "dis_custom", "ben_custom")


@dataclass(frozen=True)
class CutoutResult:
    """An RGBA cutout, the method that made it and what to record about it."""

    image: Image.Image
    method: str
    details: dict[str, Any] = field(default_factory=dict)


class Cutter(ABC):
    """Removes the background of one image."""

    method: str = ""
    #: Why ``make_cutter`` chose this cutter (``auto``); recorded in every result.
    reason: str | None = None

    @abstractmethod
    def cut(self, image: Image.Image) -> CutoutResult: ...

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The settings that decide the output (for metadata and cache keys)."""

    def _result(self, image: Image.Image, **details: Any) -> CutoutResult:
        info = {"method": self.method, **self.describe(), **details}
        if self.reason:
            info["reason"] = self.reason
        return CutoutResult(image=image, method=self.method, details=info)


# --------------------------------------------------------------------------- rembg


def numba_cache_dir() -> Path:
    """The folder Numba caches compiled code in (``NUMBA_CACHE_DIR`` or a kept default)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return cache / "fal-assets" / "numba"


def numba_cache_is_cold(folder: Path | None = None) -> bool:
    """True when Numba has compiled nothing into ``folder`` yet (the slow first import)."""
    folder = folder or numba_cache_dir()
    return not folder.is_dir() or next(folder.rglob("*.nbi"), None) is None


IMPORT_SECONDS: dict[str, float] = {}  # rembg's import time in this process, once it happened


def import_rembg(notice=None):
    """``import rembg`` with ``NUMBA_CACHE_DIR`` set to a kept folder first.

    The first import on a machine compiles pymatting's Numba code (about a minute on
    2 cores); ``notice`` (default: a line on stderr) is told before and after, so a
    run that pays it says so. Keying never gets here.
    """
    if "rembg" in sys.modules:
        return sys.modules["rembg"]
    if not os.environ.get("NUMBA_CACHE_DIR"):
        folder = numba_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
    folder = Path(os.environ["NUMBA_CACHE_DIR"])
    say = notice or (lambda line: print(line, file=sys.stderr, flush=True))
    cold = numba_cache_is_cold(folder)
    if cold:
        say(f"cutout: first rembg import on this machine: compiling Numba code into {folder} (about a minute, once)")
    started = time.perf_counter()
    import rembg

    IMPORT_SECONDS["rembg"] = seconds = round(time.perf_counter() - started, 2)
    if cold:
        say(f"cutout: rembg imported in {seconds:.0f} s; later runs reuse {folder}")
    return rembg


def rembg_homes() -> tuple[Path, Path]:
    """rembg's model folders: ``(home, legacy_home)``, as rembg 2.0.6x-2.0.8x resolve them.

    ``U2NET_HOME`` wins for both when set; otherwise ``REMBG_HOME`` (or
    ``$XDG_DATA_HOME/rembg``, ``~/.rembg``) and ``~/.u2net``. Mirrors
    ``rembg.sessions.base.BaseSession`` without importing rembg (tests check they agree).
    """
    u2net_home = os.environ.get("U2NET_HOME")
    xdg = os.environ.get("XDG_DATA_HOME")
    legacy = Path(u2net_home or os.path.join(xdg or "~", ".u2net")).expanduser()
    if u2net_home:
        home = legacy
    else:
        default = os.path.join(xdg, "rembg") if xdg else os.path.join("~", ".rembg")
        home = Path(os.environ.get("REMBG_HOME", default)).expanduser()
    return home, legacy


def model_file(model: str) -> Path | None:
    """The downloaded file of a named rembg model, or None when rembg would download it."""
    home, legacy = rembg_homes()
    for path in (home / "models" / model / f"{model}.onnx", legacy / f"{model}.onnx"):
        if path.is_file():
            return path
    return None


def _check_model_path(model_path: str | os.PathLike, where: str = "cutout") -> Path:
    path = Path(os.path.abspath(os.path.expanduser(model_path)))
    roots = [Path(os.path.abspath(root)) for root in rembg_homes()]
    if not any(path == root or root in path.parents for root in roots):
        allowed = " or ".join(dict.fromkeys(str(r) for r in roots))
        raise InvalidInput([Problem(where, "model_path", f"{path} must lie under {allowed} (set U2NET_HOME to the folder that holds it)")])
    if not path.is_file():
        raise InvalidInput([Problem(where, "model_path", f"{path} does not exist")])
    return path


_SESSIONS: dict[tuple, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def rembg_session(model: str, model_path: str | None = None, threads: int | None = None):
    """The process's one rembg session for ``model`` (built on first use, then reused)."""
    key = (model, model_path, threads)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            rembg = import_rembg()
            from rembg.sessions import sessions_names

            if model not in sessions_names:
                raise InvalidInput([Problem("cutout", "model", f"{model!r} is not a rembg model; allowed: {', '.join(sorted(sessions_names))}")])
            opts = None
            if threads:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                opts.inter_op_num_threads = 1
            kwargs = {"model_path": model_path} if model_path else {}
            session = rembg.new_session(model, sess_opts=opts, **kwargs)
            _SESSIONS[key] = session
    return session


class RembgCutter(Cutter):
    """rembg with one reused session: a named model, or a custom ONNX file.

    ``model_path`` (a file under ``U2NET_HOME``) runs through rembg's ``u2net_custom``
    session (or ``dis_custom``/``ben_custom`` when ``model`` names one). Defaults
    match ``rembg i``; ``decontaminate`` removes the background tint from soft edges
    (rembg's ``-dc``), ``alpha_matting`` is rembg's ``-a`` (slow, can leave grey fringes).
    ``threads`` caps onnxruntime's threads (for one session per process in a pool).
    """

    method = "rembg"

    def __init__(
        self,
        model: str = "u2net",
        *,
        model_path: str | os.PathLike | None = None,
        alpha_matting: bool = False,
        post_process_mask: bool = False,
        decontaminate: bool = False,
        threads: int | None = None,
    ):
        if model_path is not None:
            if model == "u2net":
                model = "u2net_custom"
            if model not in CUSTOM_MODELS:
                raise InvalidInput([Problem("cutout", "model", f"{model!r} takes no model_path; use one of {', '.join(CUSTOM_MODELS)} with a custom ONNX file")])
            model_path = str(_check_model_path(model_path))
        elif model in CUSTOM_MODELS:
            raise InvalidInput([Problem("cutout", "model_path", f"model {model!r} needs a model_path (an ONNX file under U2NET_HOME)")])
        self.model = model
        self.model_path = model_path
        self.alpha_matting = alpha_matting
        self.post_process_mask = post_process_mask
        self.decontaminate = decontaminate
        self.threads = threads
        self._import_reported = False

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_path": self.model_path,
            "alpha_matting": self.alpha_matting,
            "post_process_mask": self.post_process_mask,
            "decontaminate": self.decontaminate,
        }

    def session(self):
        return rembg_session(self.model, self.model_path, self.threads)

    def cut(self, image: Image.Image) -> CutoutResult:
        session = self.session()
        from rembg import __version__ as rembg_version
        from rembg import remove

        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
        started = time.perf_counter()
        out = remove(
            image,
            session=session,
            alpha_matting=self.alpha_matting,
            post_process_mask=self.post_process_mask,
            decontaminate=self.decontaminate,
        )
        seconds = time.perf_counter() - started
        if out.mode != "RGBA":
            out = out.convert("RGBA")
        details = {"rembg_version": rembg_version, "seconds": round(seconds, 4)}
        if "rembg" in IMPORT_SECONDS and not self._import_reported:
            details["rembg_import_s"] = IMPORT_SECONDS["rembg"]  # the first cut in a process says what the import cost
            self._import_reported = True
        return self._result(out, **details)


# ---------------------------------------------------------------------------- key


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class KeyCutter(Cutter):
    """Keys out a flat background (offline; for prompts that ask for a plain background).

    1. The background colour is the median of a ``border``-px ring (or ``background``).
    2. Background = pixels within ``tolerance`` (RGB distance, 0-441) of it that are
       connected to the image border, and (``enclosed``) the holes an outlined figure
       encloses, bounded by its outline as the outer background is (``enclosed.py``);
       white parts bounded by the figure's fill colours (eyes, a white shirt) stay.
    3. Pixels within ``edge_width`` px of the background get a soft alpha: the pixel
       is read as a blend ``I = a*F + (1-a)*B`` of the background and a nearby subject
       colour F (the nearest pixel beyond the edge band, or the strongest pixel in a
       small window for thin parts; the larger estimate wins), ``a`` its projection
       onto ``F - B``. Where F itself is near the background colour the alpha is a
       smoothstep of the colour distance between ``tolerance`` and ``softness``.
    4. Edge colours are un-mixed: ``C = (I - (1-a)B) / a`` (clipped), so no tint of the
       background stays on the edges.

    Limits: soft shadows and gradients darker than ``tolerance`` stay as part of the
    subject; a light rim right at the edge reads as partly transparent.
    """

    method = "key"

    def __init__(
        self,
        *,
        tolerance: float = 12.0,
        softness: float = 48.0,
        edge_width: int = 2,
        border: int = 4,
        background: tuple[int, int, int] | None = None,
        min_area: int = 0,
        enclosed: bool = True,
    ):
        problems = []
        if not 0 <= tolerance < softness:
            problems.append(Problem("cutout.key", "tolerance", f"must be >= 0 and below softness ({softness}); got {tolerance}"))
        if edge_width < 1:
            problems.append(Problem("cutout.key", "edge_width", f"must be at least 1 px; got {edge_width}"))
        if border < 1:
            problems.append(Problem("cutout.key", "border", f"must be at least 1 px; got {border}"))
        if problems:
            raise InvalidInput(problems)
        self.tolerance = float(tolerance)
        self.softness = float(softness)
        self.edge_width = int(edge_width)
        self.border = int(border)
        self.background = tuple(background) if background is not None else None
        self.min_area = int(min_area)
        self.enclosed = bool(enclosed)

    def describe(self) -> dict[str, Any]:
        return {
            "tolerance": self.tolerance,
            "softness": self.softness,
            "edge_width": self.edge_width,
            "border": self.border,
            "background": list(self.background) if self.background else None,
            "min_area": self.min_area,
            "enclosed": self.enclosed,
        }

    def cut(self, image: Image.Image) -> CutoutResult:
        from scipy import ndimage

        given_alpha = None
        if "A" in image.getbands() or "transparency" in image.info:
            rgba = np.asarray(image.convert("RGBA"))
            if rgba[..., 3].min() < 255:
                given_alpha = rgba[..., 3].astype(np.float32) / 255.0
            rgb = rgba[..., :3].astype(np.float32)
        else:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
        h, w = rgb.shape[:2]

        ring = np.zeros((h, w), dtype=bool)
        b = min(self.border, max(1, min(h, w) // 2))
        ring[:b, :] = ring[-b:, :] = ring[:, :b] = ring[:, -b:] = True
        if self.background is not None:
            bg_colour = np.asarray(self.background, dtype=np.float32)
        else:
            bg_colour = np.median(rgb[ring], axis=0).astype(np.float32)
        dist = np.linalg.norm(rgb - bg_colour, axis=2)

        # 2. background: near the background colour and connected to the image border
        near = dist <= self.tolerance
        labels, _ = ndimage.label(near)
        edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        background = np.isin(labels, edge_labels[edge_labels > 0])
        border_match = float((dist[ring] <= self.tolerance).mean())
        holes = None
        if self.enclosed:
            holes = enclosed.find(rgb, near, background, dist, self.tolerance, self.edge_width)
            background = background | holes.mask

        alpha = (~background).astype(np.float32)
        colour = rgb.copy()
        if background.any() and not background.all():
            to_bg = ndimage.distance_transform_edt(~background)
            band = (~background) & (to_bg <= self.edge_width)
            interior = (~background) & ~band
            flat_rgb = rgb.reshape(-1, 3)
            ys, xs = np.nonzero(band)

            candidates = []
            if interior.any():
                iy, ix = ndimage.distance_transform_edt(~interior, return_distances=False, return_indices=True)
                candidates.append(flat_rgb[iy[ys, xs] * w + ix[ys, xs]])
            # the strongest (farthest from the background) pixel in a small window
            key = (np.round(dist * 16).astype(np.int64) << 32) | np.arange(h * w, dtype=np.int64).reshape(h, w)
            key[background] = -1
            key = ndimage.maximum_filter(key, size=2 * self.edge_width + 3, mode="nearest")
            candidates.append(flat_rgb[(key[ys, xs] & 0xFFFFFFFF).astype(np.int64)])

            pix = rgb[ys, xs] - bg_colour
            best_a = np.full(len(ys), -1.0, dtype=np.float32)
            best_f = np.zeros((len(ys), 3), dtype=np.float32)
            for fg in candidates:
                fb = fg - bg_colour
                norm2 = np.einsum("ij,ij->i", fb, fb)
                proj = np.clip(np.einsum("ij,ij->i", pix, fb) / np.maximum(norm2, 1e-6), 0.0, 1.0)
                weak = norm2 < self.softness**2
                proj = np.where(weak, _smoothstep(self.tolerance, self.softness, dist[ys, xs]), proj)
                better = proj > best_a
                best_a = np.where(better, proj, best_a)
                best_f = np.where(better[:, None], fg, best_f)

            a = best_a
            unmixed = (rgb[ys, xs] - (1.0 - a)[:, None] * bg_colour) / np.maximum(a, 1e-6)[:, None]
            # un-mixing divides noise by a: below a = 0.5 lean on the subject colour F
            trust = np.clip((a - 0.1) / 0.4, 0.0, 1.0)[:, None]
            unmixed = trust * unmixed + (1.0 - trust) * best_f
            colour[ys, xs] = np.clip(unmixed, 0.0, 255.0)
            alpha[ys, xs] = a

        if self.min_area > 0:
            parts, count = ndimage.label(alpha > 0)
            if count:
                sizes = ndimage.sum_labels(np.ones_like(alpha), parts, index=np.arange(1, count + 1))
                small = np.isin(parts, np.nonzero(sizes < self.min_area)[0] + 1)
                alpha[small] = 0.0

        if given_alpha is not None:
            alpha = alpha * given_alpha
        a8 = np.round(alpha * 255.0).astype(np.uint8)
        out = np.dstack([np.where((a8 > 0)[..., None], np.round(colour), 0).astype(np.uint8), a8])
        details: dict[str, Any] = {
            "background_colour": [int(round(c)) for c in bg_colour],
            "border_match": round(border_match, 4),
            "opaque_fraction": round(float((a8 > 127).mean()), 4),
        }
        if holes is not None:
            details.update(holes.details())
        if border_match < 0.9:
            details["warning"] = (
                f"background is not flat: {border_match:.0%} of the border is within tolerance "
                f"of the background colour; rembg may do better"
            )
        return self._result(Image.fromarray(out, "RGBA"), **details)


# -------------------------------------------------------------------------- choose


def make_cutter(
    method: str = "auto",
    *,
    model: str = "u2net",
    model_path: str | os.PathLike | None = None,
    rembg_options: Mapping[str, Any] | None = None,
    key_options: Mapping[str, Any] | None = None,
) -> Cutter:
    """The cutter a config asks for: ``rembg``, ``key``, or ``auto``.

    ``auto`` uses rembg when ``model_path`` is given or the named model's file is
    already in rembg's model folder (it never starts a download), and keys the flat
    background otherwise; every result's details say which and why.
    """
    if method not in METHODS:
        raise InvalidInput([Problem("cutout", "method", f"{method!r} is not a cutout method; allowed: {', '.join(METHODS)}")])
    rembg_options = dict(rembg_options or {})
    key_options = dict(key_options or {})
    if method == "rembg":
        return RembgCutter(model, model_path=model_path, **rembg_options)
    if method == "key":
        return KeyCutter(**key_options)

    if model_path is not None:
        cutter: Cutter = RembgCutter(model, model_path=model_path, **rembg_options)
        cutter.reason = f"auto: custom model {cutter.model_path}"
        return cutter
    found = model_file(model)
    if found is not None:
        cutter = RembgCutter(model, **rembg_options)
        cutter.reason = f"auto: rembg model {model} found at {found}"
        return cutter
    home, legacy = rembg_homes()
    cutter = KeyCutter(**key_options)
    folders = " or ".join(dict.fromkeys(str(p) for p in (home / "models" / model, legacy)))
    cutter.reason = f"auto: no {model}.onnx in {folders}; keyed the flat background instead (no download)"
    return cutter
