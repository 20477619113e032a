"""Fan-out of N requests at the emulator: ours against the bound and against seed 000's loop.

    python bench/fanout_bench.py [--n 48] [--concurrency 8] [--latency 1.0]

Starts the emulator with ``--latency L --concurrency C``, then runs side by side, in one
run: (a) fal-assets' generator (async fan-out through fal_client, journal, download,
verify, store) with its in-flight limit at C, (a2) the same with the limit at 2C, so
fal's queue always holds the next request when a slot frees (fal queues requests past
the account's limit; it never runs more than C), and (b) seed 000's one-at-a-time
``fal_client.subscribe`` loop with a download per image. The bound is ceil(N/C) * L: no
client can beat the queue. Prints each time, its ratio to the bound, and the speed-up.
Target: within 1.15x of the bound for N=48, C=8. Each client is a fresh process, so its
times include start-up (imports, the journal, TLS handshakes).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def requests(n: int, tag: str) -> list[dict]:
    return [
        {"prompt": f"a knight number {i} ({tag}) in silver armor, plain white background", "image_size": {"width": 128, "height": 128}, "seed": i}
        for i in range(n)
    ]


def client_ours(n: int, concurrency: int, workdir: str) -> float:
    from fal_assets.generate import Request, Settings, generate_all

    settings = Settings(backend="fal", store_root=Path(workdir) / "store", concurrency=concurrency, poll_interval=0.1)
    batch = [Request("fal-ai/flux-2-pro", args) for args in requests(n, "ours")]
    started = time.perf_counter()
    outcomes = generate_all(batch, settings)
    elapsed = time.perf_counter() - started
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        raise SystemExit(f"ours: {len(failures)} failed: {failures[0]}")
    return elapsed


def client_seed000(n: int) -> float:
    """Seed 000 workflow 1: subscribe, then urlretrieve, one pose after another."""
    import httpx
    import fal_client

    started = time.perf_counter()
    with httpx.Client() as http:
        for arguments in requests(n, "seed000"):
            result = fal_client.subscribe("fal-ai/flux-2-pro", arguments=arguments)
            http.get(result["images"][0]["url"]).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--skip-seed000", action="store_true", help="only our generator (seed 000's loop takes N x L)")
    parser.add_argument("--client", choices=["ours", "seed000"], help=argparse.SUPPRESS)
    parser.add_argument("--client-concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:  # the client half, in a process whose env points fal_client at the emulator
        elapsed = client_ours(args.n, args.client_concurrency, args.workdir) if args.client == "ours" else client_seed000(args.n)
        print(json.dumps({"elapsed": elapsed}))
        return

    from fal_assets.emulator import EmulatorProcess

    bound = math.ceil(args.n / args.concurrency) * args.latency
    times = {}
    with EmulatorProcess(latency=args.latency, concurrency=args.concurrency) as emulator, tempfile.TemporaryDirectory() as work:
        env = {**os.environ, **emulator.env, "FAL_KEY": os.environ.get("FAL_KEY", "bench-key")}
        runs = {"ours": ("ours", args.concurrency), "ours2": ("ours", 2 * args.concurrency)}
        if not args.skip_seed000:
            runs["seed000"] = ("seed000", 1)
        for name, (client, limit) in runs.items():
            out = subprocess.run(
                [sys.executable, __file__, "--client", client, "--n", str(args.n), "--client-concurrency", str(limit),
                 "--workdir", str(Path(work) / name)],
                env=env, capture_output=True, text=True, check=True,
            ).stdout
            times[name] = json.loads(out.strip().splitlines()[-1])["elapsed"]
        ledger = emulator.ledger()
    print(f"N={args.n} C={args.concurrency} L={args.latency}s  bound ceil(N/C)*L = {bound:.2f}s  (emulator max in progress: {ledger['max_in_progress']})")
    print(f"fal-assets, limit C  : {times['ours']:7.2f}s  ratio to bound {times['ours'] / bound:.3f}")
    print(f"fal-assets, limit 2C : {times['ours2']:7.2f}s  ratio to bound {times['ours2'] / bound:.3f}  (target <= 1.15)")
    if "seed000" not in times:
        return
    print(f"seed 000 loop        : {times['seed000']:7.2f}s  ratio to bound {times['seed000'] / bound:.3f}")
    print(f"speed-up over seed 000: {times['seed000'] / times['ours2']:.1f}x (limit 2C), {times['seed000'] / times['ours']:.1f}x (limit C)")


if __name__ == "__main__":
    main()
