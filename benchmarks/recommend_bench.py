"""In-process ``Recommender.recommend`` latency per strategy on the serving benchmark's catalog.

Builds (or reuses) the bundle of ``serve_catalog.py`` (100,000 items, 200,000 shoppers, ALS 64
factors, HNSW index), loads it into one :class:`recsys.recommender.Recommender` and times
``recommend`` (k = 20, one thread) for each kind of request:

* known shopper, no recent events (``trained_vector``);
* known shopper with a purchase logged a moment ago (``fold_in``);
* unknown shopper (``trending``);
* known shopper with one top-level category filter (``trained_vector`` over a category scan).

Each call is timed with ``time.perf_counter`` (wall) and ``time.thread_time`` (CPU of the
calling thread). The machine this runs on is usually shared, so wall-clock tails mostly
measure scheduling; CPU time is the per-request cost. Every strategy is measured in several
interleaved rounds and the table reports the median of the per-round percentiles, so one
noisy round does not decide the figure. The recall@20 of the served index against exact
search is printed too, since speed is only meaningful at that quality.

Usage::

    python benchmarks/recommend_bench.py [--dir benchmarks/out/recommend] [--calls 2000]
"""

from __future__ import annotations

import one_thread_env  # noqa: F401  (sets thread counts before numpy loads)

# isort: split
import argparse
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
from serve_catalog import build_catalog_bundle

from recsys.bundle import load_bundle
from recsys.config import RecsysConfig
from recsys.recommender import Recommender
from recsys.types import (
    Filters,
    RecentEvent,
    Recommendation,
    RecommendRequest,
)

HERE = Path(__file__).resolve().parent

Call = Callable[[int], Recommendation]


def _percentiles(samples: np.ndarray) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ms = samples * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _time_calls(call: Call, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall and CPU seconds of ``n`` calls ``call(0) .. call(n - 1)``."""
    wall = np.empty(n)
    cpu = np.empty(n)
    perf, thread = time.perf_counter, time.thread_time
    for i in range(n):
        c0, w0 = thread(), perf()
        call(i)
        wall[i] = perf() - w0
        cpu[i] = thread() - c0
    return wall, cpu


def recall_at_20(rec: Recommender, users: np.ndarray) -> float:
    """Recall@20 of the served ALS index against exact inner-product search.

    Parameters
    ----------
    rec:
        The recommender (its bundle's index and factors, with any ``ef_search`` override).
    users:
        User indices whose trained vectors are the queries.

    Returns
    -------
    float
        Mean share of the exact top 20 that the index returns.
    """
    bundle = rec.bundle
    x = np.ascontiguousarray(bundle.als_user_factors[users], dtype=np.float32)
    y = np.ascontiguousarray(bundle.als_item_factors, dtype=np.float32)
    exact = np.argpartition(-(x @ y.T), 19, axis=1)[:, :20]
    found, _ = bundle.als_index.search(x, 20)
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(exact, found, strict=True))
    return hits / exact.size


def scenarios(
    rec: Recommender, n: int, seed: int, bare: Recommender | None = None
) -> dict[str, Call]:
    """One request factory per measured strategy, each over ``n`` random shoppers.

    Parameters
    ----------
    rec:
        The recommender under test.
    n:
        Requests per scenario (shoppers and items drawn up front).
    seed:
        Random seed of the draws.
    bare:
        The same bundle without its user candidate table, or None: known shoppers are then
        also timed searching the HNSW index (the table's baseline).

    Returns
    -------
    dict
        Label -> call taking the request number.
    """
    rng = np.random.default_rng(seed)
    user_ids = rec.bundle.user_ids
    item_ids = rec.catalog.item_ids
    known = [str(user_ids[i]) for i in rng.integers(0, len(user_ids), n)]
    unknown = [f"new-{i}" for i in range(n)]
    data = rec.bundle.manifest.data
    # An hour after the training data ends: a purchase the bundle has not seen yet.
    now = (data.last_event or data.reference_time) + timedelta(hours=1)
    bought = [
        [RecentEvent(str(item_ids[i]), "purchase", now)] for i in rng.integers(0, len(item_ids), n)
    ]
    tops = rec.catalog.top_categories
    cat_filters = [Filters(include_categories=(tops[i],)) for i in rng.integers(0, len(tops), n)]
    plain = [RecommendRequest(user_id=u, k=20) for u in known]
    out: dict[str, Call] = {
        "known shopper (trained_vector)": lambda i: rec.recommend(plain[i], ()),
        "known shopper + purchase now (fold_in)": lambda i: rec.recommend(plain[i], bought[i]),
        "unknown shopper (trending)": lambda i: rec.recommend(
            RecommendRequest(user_id=unknown[i], k=20), ()
        ),
        "known shopper, one category filter": lambda i: rec.recommend(
            RecommendRequest(user_id=known[i], k=20, filters=cat_filters[i]), ()
        ),
    }
    if bare is not None:
        out["known shopper, HNSW search, no candidate table (trained_vector)"] = lambda i: (
            bare.recommend(plain[i], ())
        )
    return out


def run(
    rec: Recommender, calls: int, rounds: int, warmup: int, bare: Recommender | None = None
) -> list[tuple[str, list[float]]]:
    """Time every scenario in ``rounds`` interleaved rounds of ``calls`` requests.

    Returns
    -------
    list
        (label, [p50 wall, p99 wall, p50 CPU, p99 CPU]) per scenario, in ms; each figure is
        the median over rounds.
    """
    calls_by = scenarios(rec, calls, seed=7, bare=bare)
    for label, call in calls_by.items():
        for i in range(min(warmup, calls)):
            got = call(i)
            # The label names the branch being timed; a request served by another is a bug.
            if f"({got.strategy})" not in label and "filter" not in label:
                raise RuntimeError(f"{label}: served by {got.strategy}")
    per_round: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in calls_by}
    for _ in range(rounds):
        for label, call in calls_by.items():
            wall, cpu = _time_calls(call, calls)
            per_round[label].append((*_percentiles(wall), *_percentiles(cpu)))
    return [
        (label, [float(v) for v in np.median(np.array(rows), axis=0)])
        for label, rows in per_round.items()
    ]


def main(argv: list[str] | None = None) -> int:
    """Build or reuse the bundle, time each strategy, print a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=HERE / "out" / "recommend")
    ap.add_argument("--calls", type=int, default=2000, help="requests per scenario and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--ef-search", type=int, default=None, help="HNSW efSearch override")
    args = ap.parse_args(argv)
    bundles = args.dir / "bundles"
    # Rebuilt when the settings the bundle was built with change (build_catalog_bundle checks).
    path = build_catalog_bundle(bundles)
    rec = Recommender(
        load_bundle(path),
        RecsysConfig(ef_search=args.ef_search),
    )
    idx = rec.bundle.manifest.als.index if rec.bundle.manifest.als else None
    users = np.random.default_rng(1).choice(len(rec.bundle.user_ids), 500, replace=False)
    ef = args.ef_search or (idx.ef_search if idx else None)
    print(
        f"bundle {rec.model_version}: {rec.catalog.n_items:,} items, "
        f"{len(rec.bundle.user_ids):,} shoppers, index {rec.bundle.als_index.kind} "
        f"efSearch {ef}, recall@20 vs exact {recall_at_20(rec, users):.3f} (500 shoppers)"
    )
    bare = None
    if rec.bundle.als_user_candidates is not None:
        bare = Recommender(
            rec.bundle.without_user_candidates(),
            rec.config,
        )
    rows = run(rec, args.calls, args.rounds, args.warmup, bare)
    print()
    print("| request (k = 20) | p50 wall | p99 wall | p50 CPU | p99 CPU |")
    print("| --- | --- | --- | --- | --- |")
    for label, (w50, w99, c50, c99) in rows:
        print(f"| {label} | {w50:.3f} ms | {w99:.3f} ms | {c50:.3f} ms | {c99:.3f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
