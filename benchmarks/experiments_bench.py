"""The experiment statistics' own error rates, and a readout of a store with a planted effect.

Array-level seeded experiments (``experiments.validation``): coverage of the planted effect
by the 95 % interval (conversion, revenue per shopper, AOV), A/A false positives at the end
and at any daily look (always-valid p-value), the CUPED narrowing of the revenue interval,
and the sample-ratio check on a 52/48 and a 50/50 split of 20,000 shoppers. Then a synthetic
store (``training.data.synthetic``) with a planted conversion lift for one variant is read
out end to end (attribution, CUPED, sequential) to show the generator's effect recovered.

Usage::

    python benchmarks/experiments_bench.py [--dir benchmarks/out/experiments] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.readout import build_readout  # noqa: E402
from experiments.validation import a_a, coverage, cuped_width_ratios, srm_trips  # noqa: E402
from training.data.synthetic import generate_store, load_store  # noqa: E402
from training.data.synthetic_experiment import (  # noqa: E402
    PlantedExperiment,
    exposures_from_sessions,
)
from training.data.synthetic_sessions import SessionModel  # noqa: E402


def _row(check: str, result: str, target: str) -> str:
    return f"| {check} | {result} | {target} |"


def statistics_table(quick: bool) -> list[str]:
    """Rows of the error-rate table."""
    reps, aa_runs = (30, 50) if quick else (100, 200)
    rows = ["| check | result | target |", "|---|---|---|"]
    t0 = time.perf_counter()
    cov = coverage(range(reps), 10_000)
    for name, k in cov.counts.items():
        rows.append(_row(f"coverage, {name} (10,000 shoppers)", f"{k}/{cov.runs}", ">= 93/100"))
    aa = a_a(range(10_000, 10_000 + aa_runs), 4_000)
    rows.append(_row("A/A significant, fixed horizon", f"{aa.counts['fixed']}/{aa.runs}", "<= 6%"))
    rows.append(
        _row(
            "A/A significant, sequential, daily looks",
            f"{aa.counts['sequential']}/{aa.runs}",
            "<= 6%",
        )
    )
    ratios = np.array(cuped_width_ratios(range(500, 500 + reps // 5), 10_000))
    rows.append(
        _row(
            "CUPED revenue CI width / plain (mean, worst)",
            f"{ratios.mean():.3f}, {ratios.max():.3f}",
            "<= 0.80",
        )
    )
    for share, label in ((0.52, "52/48"), (0.50, "50/50")):
        s = srm_trips(range(reps), 20_000, share)
        want = "nearly always" if share != 0.5 else "about 0.1% of runs"
        rows.append(
            _row(f"SRM trips, {label} draws of 20,000", f"{s.counts['trips']}/{s.runs}", want)
        )
    rows.append(f"\n(simulations: {time.perf_counter() - t0:.1f} s)")
    return rows


def planted_store_table(out: Path, quick: bool) -> list[str]:
    """Read out a synthetic store whose treatment shoppers convert 30 % more per view."""
    planted = PlantedExperiment(
        split={"control": 0.5, "treatment": 0.5},
        conversion_lift={"treatment": 1.3},
        start_day=28,
    )
    users = 2_000 if quick else 6_000
    generate_store(
        out, users=users, items=300, days=42, seed=11, model=SessionModel(planted=planted)
    )
    store = load_store(out)
    exposures = exposures_from_sessions(store.events, planted)
    t0 = time.perf_counter()
    r = build_readout(
        exposures, store.events, experiment=planted.name, shares=planted.split,
        window=timedelta(days=7),
    )  # fmt: skip
    took = time.perf_counter() - t0
    rows = [
        f"synthetic store: {users} shoppers, 42 days, effect planted from day 28 "
        f"(treatment converts each view x1.3); SRM p = {r.srm.p_value:.3f}; "
        f"readout in {took:.1f} s",
        "",
        "| metric | effect (95% CI) | relative | CUPED CI width / plain | always-valid CI |",
        "|---|---|---|---|---|",
    ]
    for m in r.metrics:
        if m.effect is None:
            rows.append(f"| {m.metric} | {m.note} | | | |")
            continue
        e = m.effect
        width = "n/a" if m.cuped_width_ratio is None else f"{m.cuped_width_ratio:.3f}"
        rel = "n/a" if e.relative is None else f"{e.relative:+.1%}"
        rows.append(
            f"| {m.metric} | {e.absolute:.4g} [{e.ci_low:.4g}, {e.ci_high:.4g}] | {rel} | "
            f"{width} | [{m.seq_ci_low:.4g}, {m.seq_ci_high:.4g}] |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print both tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "benchmarks" / "out" / "experiments")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, smaller store")
    args = ap.parse_args(argv)
    print("\n".join(statistics_table(args.quick)))
    print()
    print("\n".join(planted_store_table(args.dir / "store", args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
