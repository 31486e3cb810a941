"""Benchmark the synthetic storefront generator.

    .venv/bin/python benchmarks/generate_bench.py --events 1000000

A small pilot run measures events per shopper for the chosen catalog and window; the number of
shoppers is then scaled to reach the target, and the full run (generation plus writing the
Parquet files) is timed. Prints one table row: events, seconds, events/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from training.data.synthetic import generate_store

PILOT_USERS = 500


@dataclass(frozen=True)
class GenerateBenchResult:
    """One timed run of the generator."""

    events: int
    users: int
    items: int
    days: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        """Throughput of the run."""
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def _count(path: Path) -> int:
    return int(pq.ParquetFile(path).metadata.num_rows)


def run(target_events: int, *, items: int, days: int, seed: int) -> GenerateBenchResult:
    """Generate about ``target_events`` events and time it.

    Parameters
    ----------
    target_events:
        Wanted size of the event log (the result is within a few percent).
    items, days, seed:
        Catalog size, window length and seed of the timed run.

    Returns
    -------
    GenerateBenchResult
        Sizes and wall-clock seconds of the timed run.
    """
    with tempfile.TemporaryDirectory(prefix="fairshelf-bench-") as tmp:
        pilot = generate_store(
            Path(tmp) / "pilot", users=PILOT_USERS, items=items, days=days, seed=seed
        )
        per_user = _count(pilot.events) / PILOT_USERS
        users = max(1, round(target_events / per_user))
        start = time.perf_counter()
        paths = generate_store(Path(tmp) / "run", users=users, items=items, days=days, seed=seed)
        seconds = time.perf_counter() - start
        return GenerateBenchResult(_count(paths.events), users, items, days, seconds)


def format_table(results: list[GenerateBenchResult]) -> str:
    """A Markdown table of results (paste-able into the README)."""
    lines = [
        "| events | users | items | days | seconds | events/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.events:,} | {r.users:,} | {r.items:,} | {r.days} | {r.seconds:.2f} "
            f"| {r.events_per_second:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[GenerateBenchResult]:
    """Parse arguments, run the benchmark, print the table and return the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = [run(n, items=args.items, days=args.days, seed=args.seed) for n in args.events]
    print(format_table(results))
    return results


if __name__ == "__main__":
    main()
