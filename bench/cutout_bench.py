"""Cutout throughput: one reused rembg session vs a process pool vs ``rembg i`` per file.

Runs offline: a custom ONNX model built here (tests/onnx_model.py; ``--conv-layers``
3x3 convolutions so inference does real work) under a temporary ``U2NET_HOME``,
and ``--n`` generated images. All three methods read the same PNGs and write
PNGs, in one run, side by side:

  (a) one RembgCutter session in this process, reused for every image
  (b) a process pool (one process per core, each with one session, 1 thread each)
  (c) a loop of ``rembg i -m u2net_custom`` subprocesses, one per file

Timings include each method's start-up (session, pool, interpreter per file).
Outputs of (a), (b) and (c) are compared pixel for pixel.

    .venv/bin/python bench/cutout_bench.py --n 24 --size 512
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fal_assets.cutout import RembgCutter, import_rembg, numba_cache_dir  # noqa: E402
from onnx_model import run_rembg_cli, write_model  # noqa: E402


def make_images(folder: Path, n: int, size: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        image = Image.new("RGB", (size, size), (255, 255, 255))
        d = ImageDraw.Draw(image)
        colour = tuple(int(c) for c in rng.integers(10, 120, 3))
        cx, cy, r = size / 2 + rng.normal(0, size / 16), size / 2, size * rng.uniform(0.2, 0.35)
        d.ellipse([cx - r * 0.6, cy - r, cx + r * 0.6, cy + r], fill=colour)
        d.ellipse([cx - r * 0.3, cy - r * 1.4, cx + r * 0.3, cy - r * 0.8], fill=colour)
        path = folder / f"img_{i:03d}.png"
        image.save(path)
        paths.append(path)
    return paths


_WORKER: RembgCutter | None = None


def _init_worker(model_path: str, threads: int) -> None:
    global _WORKER
    _WORKER = RembgCutter(model_path=model_path, threads=threads)
    _WORKER.session()


def _cut_file(src: str, dst: str) -> None:
    with Image.open(src) as image:
        _WORKER.cut(image).image.save(dst)


def run_in_process(paths, out: Path, model_path: str) -> tuple[float, float]:
    """(total seconds, seconds after the session was built)."""
    started = time.perf_counter()
    cutter = RembgCutter(model_path=model_path)
    cutter.session()
    warm = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            cutter.cut(image).image.save(out / path.name)
    done = time.perf_counter()
    return done - started, done - warm


def _ready(hold: float) -> int:
    time.sleep(hold)  # keeps this worker busy so the next task goes to another one
    return os.getpid()


def run_pool(paths, out: Path, model_path: str, workers: int) -> tuple[float, float]:
    """(total seconds, seconds after every worker had its session)."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(model_path, threads)) as pool:
        list(pool.map(_ready, [0.3] * workers))
        warm = time.perf_counter()
        list(pool.map(_cut_file, [str(p) for p in paths], [str(out / p.name) for p in paths]))
        done = time.perf_counter()
    return done - started, done - warm


def run_cli(paths, out: Path, model_path: str) -> tuple[float, float]:
    extras = json.dumps({"model_path": model_path})
    started = time.perf_counter()
    for path in paths:
        run_rembg_cli(["i", "-m", "u2net_custom", "-x", extras, str(path), str(out / path.name)])
    seconds = time.perf_counter() - started
    return seconds, seconds  # every file pays start-up


def same_outputs(a: Path, b: Path, names) -> bool:
    for name in names:
        with Image.open(a / name) as x, Image.open(b / name) as y:
            if not np.array_equal(np.asarray(x), np.asarray(y)):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="images (default 24)")
    parser.add_argument("--size", type=int, default=512, help="image side in px (default 512)")
    parser.add_argument("--conv-layers", type=int, default=6, help="3x3 conv layers in the model (default 6; 0 = trivial model)")
    parser.add_argument("--channels", type=int, default=32, help="channels per conv layer (default 32)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="pool processes (default: cores)")
    args = parser.parse_args()

    os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
    with tempfile.TemporaryDirectory(prefix="cutout-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["U2NET_HOME"] = str(tmp / "u2net")
        model = str(write_model(tmp / "u2net" / "bench.onnx", conv_layers=args.conv_layers, channels=args.channels))
        (tmp / "in").mkdir()
        paths = make_images(tmp / "in", args.n, args.size)

        started = time.perf_counter()
        import_rembg()
        import_s = time.perf_counter() - started

        results = {}
        for key, label, run in (
            ("a", "(a) one session, in process", lambda out: run_in_process(paths, out, model)),
            ("b", f"(b) process pool x{args.workers}", lambda out: run_pool(paths, out, model, args.workers)),
            ("c", "(c) rembg i per file", lambda out: run_cli(paths, out, model)),
        ):
            out = tmp / f"out_{key}"
            out.mkdir()
            total, warm = run(out)
            results[key] = (label, total, warm, out)
            print(f"{label}: {total:.2f} s", flush=True)

        names = [p.name for p in paths]
        identical = same_outputs(results["a"][3], results["c"][3], names) and same_outputs(results["b"][3], results["c"][3], names)

    print()
    print(f"{args.n} images {args.size}x{args.size}, model: {args.conv_layers} conv layers x {args.channels} channels, {os.cpu_count()} cores")
    print(f"import rembg (Numba cache {os.environ['NUMBA_CACHE_DIR']}): {import_s:.2f} s")
    print(f"{'method':32} {'seconds':>8} {'images/s':>9} {'warm images/s':>14}")
    for label, total, warm, _ in results.values():
        print(f"{label:32} {total:8.2f} {args.n / total:9.2f} {args.n / warm:14.2f}")
    cli = results["c"][1]
    print(f"throughput ratio (a)/(c): {cli / results['a'][1]:.1f}x   (b)/(c): {cli / results['b'][1]:.1f}x   (start-up included)")
    print("warm: after the session (a) or every worker's session (b) was built; (c) pays start-up per file")
    (_, a_total, a_warm, _), (_, b_total, b_warm, _) = results["a"], results["b"]
    pool_vs_one, pool_vs_one_warm = a_total / b_total, (args.n / b_warm) / (args.n / a_warm)
    print(f"pool (b) against one session (a): {pool_vs_one:.2f}x with start-up, {pool_vs_one_warm:.2f}x warm "
          f"({busy_threads()} onnxruntime threads per session by default, {os.cpu_count()} cores)")
    print("verdict: " + ("a pool would win here" if pool_vs_one > 1.0 else
                         "one session per process wins: the pipeline ships no pool (one onnxruntime session already uses every core)"))
    print(f"outputs identical across (a), (b), (c): {'yes' if identical else 'NO'}")


def busy_threads() -> int:
    """How many intra-op threads onnxruntime gives a session by default (one per physical core)."""
    import onnxruntime as ort

    return ort.SessionOptions().intra_op_num_threads or (os.cpu_count() or 1)


if __name__ == "__main__":
    main()
