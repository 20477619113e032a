"""Animation frames per second: the offline path, and the emulator path against the bound.

    python bench/animation_bench.py [--animations 4] [--frames 8] [--concurrency 8] [--latency 1.0]

One character with A animations of F keyframes each (FLUX.2 flash edit, 256x256: small, so the emulator's own drawing on 2 cores stays below L), made
by ``fal_assets.animation.animation_frames`` through the journal, measured side by side
in one run:

- offline: the local backend (the renderer draws every frame in-process);
- emulator, ``chain: false``: every frame from the base pose alone, all A*F requests
  in one wave; the bound is ceil(A*F / C) * L (no client can beat fal's queue);
- emulator, chained (the default): frame k waits for frame k-1, the A chains advance
  side by side one wave per frame; the bound is F * ceil(A / C) * L.

Each emulator client is a fresh process (its time includes imports, the journal and TLS
start-up) with an in-flight limit of 2C (fal queues what exceeds the account's C).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def spec_text(animations: int, frames: int, chain: bool, tag: str) -> str:
    lines = "\n".join(
        f"  a{i}: {{pose: run, frames: {frames}, fps: 12, motion: one full running stride take {i} {tag}, "
        f"endpoint: fal-ai/flux-2/flash/edit, chain: {'true' if chain else 'false'}}}"
        for i in range(animations)
    )
    return textwrap.dedent("""\
        name: bench
        trigger_word: bench_char
        description: a small knight in silver armor with a red plume on the helmet
        style: flat vector game art
        poses:
          run: running to the right mid-stride
        animations:
        """) + lines + "\n"


def make_frames(workdir: Path, animations: int, frames: int, chain: bool, backend: str, concurrency: int, tag: str) -> float:
    from fal_assets import animation as an
    from fal_assets.generate import Settings, generate_all
    from fal_assets.prompts import pose_prompt
    from fal_assets.render import render_image
    from fal_assets.spec import load_spec

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "bench.yaml"
    path.write_text(spec_text(animations, frames, chain, tag))
    spec = load_spec(path)
    base = workdir / "run.png"
    render_image({"prompt": pose_prompt(spec, "run"), "seed": 1, "image_size": {"width": 256, "height": 256}}).save(base)
    settings = Settings(backend=backend, store_root=workdir / "store", concurrency=concurrency, poll_interval=0.05)
    names = list(spec.animations)
    started = time.perf_counter()
    made = an.animation_frames(spec, names, {n: base for n in names}, None, {n: workdir / n for n in names},
                               lambda requests: generate_all(requests, settings))
    elapsed = time.perf_counter() - started
    failed = [f"{n}: {m}" for n, m in made.items() if isinstance(m, BaseException)]
    if failed:
        raise SystemExit("; ".join(failed))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--animations", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--client", choices=["chained", "unchained"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    a, f, c, latency = args.animations, args.frames, args.concurrency, args.latency
    if args.client:  # the client half, in a process whose env points fal_client at the emulator
        elapsed = make_frames(Path(args.workdir), a, f, args.client == "chained", "fal", 2 * c, args.client)
        print(json.dumps({"elapsed": elapsed}))
        return

    from fal_assets.emulator import EmulatorProcess

    n = a * f
    with tempfile.TemporaryDirectory() as work:
        offline = make_frames(Path(work) / "offline", a, f, True, "local", 2 * c, "offline")
        times = {}
        with EmulatorProcess(latency=latency, concurrency=c) as emulator:
            env = {**os.environ, **emulator.env, "FAL_KEY": os.environ.get("FAL_KEY", "bench-key"), "PYTHONPATH": str(ROOT)}
            for mode in ("unchained", "chained"):
                out = subprocess.run(
                    [sys.executable, __file__, "--client", mode, "--animations", str(a), "--frames", str(f), "--concurrency", str(c),
                     "--latency", str(latency), "--workdir", str(Path(work) / mode)],
                    env=env, capture_output=True, text=True, check=True,
                ).stdout
                times[mode] = json.loads(out.strip().splitlines()[-1])["elapsed"]
            ledger = emulator.ledger()
    bounds = {"unchained": math.ceil(n / c) * latency, "chained": f * math.ceil(a / c) * latency}
    # The emulator draws each frame with the local renderer on the same cores; the bound
    # with that drawing added (t = the offline time per frame, spread over the cores):
    cores, draw = os.cpu_count() or 1, offline / n
    drawn = {"unchained": bounds["unchained"] + n * draw / cores,
             "chained": f * (math.ceil(a / c) * latency + math.ceil(min(a, c) / cores) * draw)}
    print(f"A={a} animations x F={f} frames = {n} frames; emulator C={c}, L={latency}s (max in progress: {ledger['max_in_progress']})")
    print(f"offline (local renderer)   : {offline:7.2f}s  {n / offline:6.1f} frames/s")
    for mode, label in (("unchained", "emulator, chain: false   "), ("chained", "emulator, chained        ")):
        rule = "ceil(A*F/C)*L" if mode == "unchained" else "F*ceil(A/C)*L"
        print(f"{label} : {times[mode]:7.2f}s  {n / times[mode]:6.1f} frames/s  bound {rule} = {bounds[mode]:.2f}s  "
              f"ratio {times[mode] / bounds[mode]:.3f}; with the emulator's drawing ({draw:.2f}s/frame on {cores} cores) "
              f"{drawn[mode]:.2f}s, ratio {times[mode] / drawn[mode]:.3f}")


if __name__ == "__main__":
    main()
