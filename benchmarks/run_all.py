"""Run every benchmark in turn; each prints its own table.

Usage: ``python benchmarks/run_all.py [--data ONLINE_RETAIL.parquet] [--quick] [--only NAME ...]``

``--data`` points at the UCI Online Retail file (it is not shipped: see README, Data and
licenses); without it the trainer benchmark runs on a generated store of about 1M events.
``--quick`` shortens the load tests for a smoke run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _plan(data: Path | None, quick: bool) -> list[tuple[str, list[str]]]:
    train = ["--data", str(data), "--cut", "2011-11-01"] if data else ["--synthetic", "1000000"]
    plan = [
        ("generate", ["generate_bench.py", "--events", "1000000"]),
        ("train", ["train_bench.py", *train]),
        ("index", ["index_bench.py"]),
        ("pricing", ["pricing_bench.py"]),
        ("guard", ["guard_bench.py"]),
        ("serve", ["serve_bench.py", *(["--quick"] if quick else [])]),
        (
            "transport-gap",
            ["transport_gap_bench.py", *(["--rounds", "1", "--seconds", "4"] if quick else [])],
        ),
        ("exposure", ["exposure_bench.py"]),
        ("writer-tails", ["writer_tails_bench.py", *(["--rounds", "1"] if quick else [])]),
        ("experiments", ["experiments_bench.py", *(["--quick"] if quick else [])]),
        ("console", ["console_bench.py", *(["--calls", "20"] if quick else [])]),
    ]
    return [(name, args) for name, args in plan if (HERE / args[0]).exists()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="UCI Online Retail parquet for the trainer")
    parser.add_argument("--quick", action="store_true", help="short load tests")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    args = parser.parse_args()
    if args.data is not None and not args.data.exists():
        parser.error(f"--data {args.data} does not exist")
    failed: list[str] = []
    for name, cmd in _plan(args.data, args.quick):
        if args.only and name not in args.only:
            continue
        print(f"\n## {name}: {' '.join(cmd)}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / cmd[0]), *cmd[1:]])
        print(f"({name}: exit {rc}, {time.perf_counter() - start:.0f} s)", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
