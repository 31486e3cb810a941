"""Benchmark of the two-tower model alone against ALS and the simple baselines.

Usage::

    python benchmarks/two_tower_bench.py --data DATASET_DIR --cut 2011-11-01 [--config C]

``DATASET_DIR`` holds canonical ``events`` and ``items`` files (the output of
``fairshelf data import``). The models are fitted twice, as the trainer does: on the events
before the validation cut (cut minus ``evaluation.validation_days``), scored on the window up
to the cut, and on the events before the cut, scored on the test period. Settings are chosen
on the validation rows only; the test rows are printed to report them. Prints Recall@20 and
NDCG@20 over all purchases and over novel items, and the fit times with the two-tower's as a
ratio to the ALS fit of the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from recsys.hybrid import HybridParams
from training.baselines import baseline_scorers
from training.blend_search import model_scorers
from training.config import load_config
from training.evaluation import evaluate_modes
from training.fit import fit_window
from training.prepare import prepare
from training.trainer import parse_cut, splits_for

SHOWN = ("two_tower", "als", "baseline/ease", "baseline/popularity", "baseline/top_frequency")


def _files(directory: Path) -> tuple[Path, Path]:
    ev = next(p for p in (directory / "events.parquet", directory / "events.csv") if p.exists())
    it = next(p for p in (directory / "items.parquet", directory / "items.csv") if p.exists())
    return ev, it


def main() -> None:
    """Fit on the validation and evaluation cuts and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="canonical dataset directory")
    ap.add_argument("--cut", required=True, help="evaluation cut YYYY-MM-DD")
    ap.add_argument("--config", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test", action="store_true", help="also fit and score the test period")
    args = ap.parse_args()
    cfg = load_config(args.config, {"show_progress": False})
    events, items = _files(Path(args.data))
    data = prepare(events, items, cfg)
    ev = data.events
    cut = parse_cut(args.cut)
    val_cut = cut - pd.Timedelta(days=cfg.evaluation.validation_days)
    windows = [("validation", val_cut, cut)] + ([("test", cut, None)] if args.test else [])
    factors = cfg.als.factors_grid[0]
    print("| split | model | Recall@20 all | NDCG@20 all | Recall@20 novel | NDCG@20 novel |")
    print("| --- | --- | --- | --- | --- | --- |")
    times: list[str] = []
    for name, start, end in windows:
        train_ev = ev[ev["timestamp"] < start]
        test_ev = ev[(ev["timestamp"] >= start) & ((ev["timestamp"] < end) if end else True)]
        fitted = fit_window(train_ev, data.catalog, cfg, args.seed, [factors], True)
        splits = splits_for(fitted, data.catalog, test_ev)
        scorers = {
            k: v for k, v in model_scorers(fitted, factors, HybridParams()).items() if k in SHOWN
        }
        base = baseline_scorers(
            fitted.purchases,
            fitted.purchase_ages,
            cfg.evaluation.baseline_popularity_days,
            args.seed,
            cfg.als.threads,
        )
        scorers.update({k: v for k, v in base.items() if k in SHOWN})
        for model in SHOWN:
            if model not in scorers:
                continue
            m = evaluate_modes(scorers[model], splits, [20])
            a, n = m["all"], m["novel"]
            print(
                f"| {name} | {model} | {a['recall@20']:.4f} | {a['ndcg@20']:.4f} "
                f"| {n['recall@20']:.4f} | {n['ndcg@20']:.4f} |"
            )
        tt = fitted.timings.get("two_tower", 0.0)
        als = fitted.timings.get(f"als_{factors}", float("nan"))
        model_tt = fitted.two_tower
        kept = (
            f"{model_tt.best_epochs} epochs kept, "
            f"{'ALS' if model_tt.warm_started else 'random'} item-id start"
            if model_tt is not None
            else "not fitted"
        )
        times.append(
            f"{name}: two-tower fit {tt:.1f} s ({kept}), ALS fit {als:.1f} s ({tt / als:.1f}x)"
        )
    print("\n" + "\n".join(times))


if __name__ == "__main__":
    main()
