"""Item-vector index benchmark: exact search against the default HNSW index.

Builds ``recsys.index.VectorIndex`` over ALS item factors (by default fitted with ``implicit``
on a random purchase matrix with category structure and in-category popularity skew, so the
norms are as uneven as real ALS factors; or read from a bundle with ``--bundle``) as the
trainer does (``recsys.index_tuning.build_tuned``: query beam chosen on a sample of user vectors),
then prints build time, recall@20 against exact inner-product search on other sampled user
vectors, and single-query latency (p50/p99, wall and CPU) with one FAISS thread at the
search size serving uses (``k * oversample`` = 80). The same graph at the former fixed beam
(``efSearch`` 160) and the previous index, an HNSW graph built with the inner product
itself, are shown for comparison.

Usage::

    python benchmarks/index_bench.py                    # 100,000 items x 64, generated
    python benchmarks/index_bench.py --bundle DIR       # a bundle's ALS factors
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import scipy.sparse as sp

from recsys.index import IndexSettings, VectorIndex
from recsys.index_tuning import build_tuned, recall_against_exact


def als_like_factors(
    n_items: int, n_users: int, factors: int, seed: int, per_user: int = 10, n_cats: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """ALS item and user factors fitted on a synthetic purchase matrix.

    Each shopper buys ``per_user`` items from two favourite categories, skewed towards each
    category's popular items, like ``benchmarks/serve_catalog.py``.

    Parameters
    ----------
    n_items, n_users:
        Catalog and shopper counts.
    factors:
        ALS dimension.
    seed:
        Random seed (data and ALS).
    per_user:
        Purchases per shopper.
    n_cats:
        Number of categories.

    Returns
    -------
    (item_factors, user_factors):
        float32 C-contiguous ``(n_items, factors)`` and ``(n_users, factors)``.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    rng = np.random.default_rng(seed)
    cat = rng.integers(0, n_cats, n_items)
    order = np.argsort(cat, kind="stable")
    bounds = np.searchsorted(cat[order], np.arange(n_cats + 1))
    favs = rng.integers(0, n_cats, (n_users, 2))
    pick = favs[np.arange(n_users)[:, None], rng.integers(0, 2, (n_users, per_user))]
    lo, hi = bounds[pick], bounds[pick + 1]
    # u ** 2.5 puts most purchases on the first (popular) items of each category.
    pos = lo + ((rng.random((n_users, per_user)) ** 2.5) * (hi - lo)).astype(np.int64)
    items = order[np.minimum(pos, hi - 1)].ravel()
    users = np.repeat(np.arange(n_users), per_user)
    weights = rng.uniform(1.0, 6.0, len(items)).astype(np.float32)
    matrix = sp.csr_matrix((weights, (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    als = AlternatingLeastSquares(
        factors=factors, iterations=4, regularization=0.1, random_state=seed
    )
    als.fit(matrix, show_progress=False)
    return (
        np.ascontiguousarray(als.item_factors, dtype=np.float32),
        np.ascontiguousarray(als.user_factors, dtype=np.float32),
    )


def inner_product_graph(vectors: np.ndarray, settings: IndexSettings, ef: int) -> VectorIndex:
    """The previous HNSW index: graph built with the inner product as its similarity."""
    index = faiss.IndexHNSWFlat(vectors.shape[1], settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = settings.ef_construction
    index.hnsw.efSearch = ef
    index.add(vectors)
    return VectorIndex(index, "hnsw")


def with_ef(index: VectorIndex, ef: int) -> VectorIndex:
    """A copy of ``index`` searching with beam width ``ef`` (same graph)."""
    copy = VectorIndex(faiss.clone_index(index.index), index.kind)
    faiss_index: Any = copy.index
    faiss_index.hnsw.efSearch = ef
    return copy


def latency_ms(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[float, ...]:
    """p50/p99 wall and CPU milliseconds of one-query searches (one FAISS thread).

    Calls FAISS directly, as ``recsys.candidates.VectorSource.search`` does on the request
    path. CPU time is reported beside wall time because the machine is shared: wall-clock
    tails include time spent waiting for a core.
    """
    wall, cpu = [], []
    for row in queries:
        q = row[None, :]
        t0, c0 = time.perf_counter(), time.process_time()
        index.index.search(q, k)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    w, c = np.array(wall) * 1e3, np.array(cpu) * 1e3
    return (
        float(np.percentile(w, 50)),
        float(np.percentile(w, 99)),
        float(np.percentile(c, 50)),
        float(np.percentile(c, 99)),
    )


# The beam every HNSW index searched with before it was chosen per index.
FORMER_EF_SEARCH = 160


def main() -> None:
    """Build the indexes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--bundle", type=Path, default=None, help="read ALS factors from here")
    parser.add_argument("--queries", type=int, default=1000, help="user vectors for recall")
    parser.add_argument("--timed", type=int, default=2000, help="single-query searches timed")
    parser.add_argument("--search-k", type=int, default=80, help="neighbours per timed search")
    parser.add_argument("--threads", type=int, default=2, help="FAISS threads for the build")
    parser.add_argument("--no-ip-graph", action="store_true", help="skip the previous index")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    if args.bundle is not None:
        y = np.ascontiguousarray(np.load(args.bundle / "als_item_factors.npy"), np.float32)
        x = np.ascontiguousarray(np.load(args.bundle / "als_user_factors.npy"), np.float32)
        source = str(args.bundle)
    else:
        faiss.omp_set_num_threads(args.threads)
        y, x = als_like_factors(args.items, args.users, args.factors, args.seed)
        source = f"implicit ALS on {args.users:,} synthetic shoppers"
    rng = np.random.default_rng(args.seed + 1)
    x = x[np.abs(x).sum(axis=1) > 0]
    order = rng.permutation(len(x))
    queries = x[order[: args.queries]]
    timed = x[order[args.queries : args.queries + args.timed]]
    # The beam is chosen on shoppers outside both samples above, so the recall printed is
    # not the one it was chosen on.
    tuning = x[order[args.queries + args.timed :]]
    norms = np.linalg.norm(y, axis=1)
    print(
        f"items {y.shape[0]:,} x {y.shape[1]} ({source}, {time.perf_counter() - t0:.0f} s); "
        f"item norm p50 {np.median(norms):.3f}, p99 {np.percentile(norms, 99):.3f}, "
        f"max {norms.max():.3f}"
    )

    default = IndexSettings()
    rows: list[tuple[str, float, VectorIndex]] = []
    faiss.omp_set_num_threads(args.threads)
    t0 = time.perf_counter()
    exact = VectorIndex.build(y, IndexSettings(exact_below=10**12))
    rows.append(("exact (IndexFlatIP)", time.perf_counter() - t0, exact))
    t0 = time.perf_counter()
    tuned = build_tuned(y, tuning, default, seed=args.seed)
    built = time.perf_counter() - t0
    hnsw = tuned.index
    ef = hnsw.ef_search or default.ef_search
    choice = tuned.choice
    print(
        f"HNSW M {default.hnsw_m}, efConstruction {default.ef_construction}; efSearch {ef} "
        f"chosen for recall@20 >= {default.recall_target} + {default.recall_margin} on "
        f"{tuned.n_calibration:,} shoppers "
        f"(recall there {choice.recall if choice else 1.0:.4f}); FAISS threads: {args.threads} "
        f"to build (and tune), 1 to search; recall at k = 20, timed at k = {args.search_k}"
    )
    rows.append((f"HNSW default (MIPS->L2, norm layers), ef {ef}", built, hnsw))
    if ef != FORMER_EF_SEARCH:
        rows.append(
            (
                f"  same graph, ef {FORMER_EF_SEARCH} (former fixed)",
                0.0,
                with_ef(hnsw, FORMER_EF_SEARCH),
            )
        )
    if not args.no_ip_graph:
        t0 = time.perf_counter()
        ip = inner_product_graph(y, default, ef)
        rows.append((f"HNSW inner-product graph (previous), ef {ef}", time.perf_counter() - t0, ip))
    header = (
        f"{'index':44s} {'build s':>8s} {'recall@20':>9s} {'p50 wall':>9s} {'p99 wall':>9s} "
        f"{'p50 CPU':>8s} {'p99 CPU':>8s}"
    )
    print(header)
    print("-" * len(header))
    faiss.omp_set_num_threads(1)
    for name, build_s, index in rows:
        recall = recall_against_exact(index, y, queries, 20)
        p50w, p99w, p50c, p99c = latency_ms(index, timed, args.search_k)
        print(
            f"{name:44s} {build_s:8.1f} {recall:9.4f} {p50w:7.3f}ms {p99w:7.3f}ms "
            f"{p50c:6.3f}ms {p99c:6.3f}ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
