"""``python -m fal_assets.emulator --port P ...``: the same server the CLI's ``emulate`` runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InvalidInput


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fal_assets.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each job spends in progress (the render runs during it)")
    parser.add_argument("--concurrency", type=int, default=2, help="jobs in progress at most")
    parser.add_argument("--faults", default=None, help="e.g. 429=0.3,503=0.05,drop=0.02,hang=0.01,nsfw=0.01")
    parser.add_argument("--seed", type=int, default=None, help="seed for faults and for requests without a seed")
    parser.add_argument("--cert-dir", type=Path, default=None, help="keep (and reuse) the test CA here")
    parser.add_argument("--hang-seconds", type=float, default=60.0, help="how long a 'hang' fault holds a request")
    parser.add_argument("--reject-at", default="result", choices=["result", "submit"],
                        help="when an invalid request gets its 422: at the result GET (fal's behaviour) or at submit")
    args = parser.parse_args(argv)
    from .runner import run_emulator

    try:
        run_emulator(
            args.port,
            latency=args.latency,
            concurrency=args.concurrency,
            faults=args.faults,
            seed=args.seed,
            cert_dir=args.cert_dir,
            host=args.host,
            hang_seconds=args.hang_seconds,
            reject_at=args.reject_at,
        )
    except InvalidInput as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
