"""Build-time choice of an index and its query beam, and recall against exact search.

Used by the trainer and the benchmarks (serving only loads and searches
:class:`recsys.index.VectorIndex`).

Query beam chosen per index
---------------------------
How wide a beam (``efSearch``) reaches a given recall depends on the catalog and its
factors, so :func:`build_tuned` chooses it per built index: the smallest beam on
:data:`EF_LADDER` whose recall@20 on calibration queries (user vectors) reaches the target
plus a margin, then measures recall@20 at that beam on *other* queries, so that the recorded
recall is not the optimistic figure the choice was made on. On the benchmark bundle (100,000
items) the target 0.99 is met at ``efSearch`` 112 instead of the former fixed 160, for
70-80 % of the search time.

The tuning searches 20 neighbours although serving asks for ``k * oversample`` (80 by
default): FAISS sizes its candidate heap ``max(efSearch, k)`` but stops the beam search when
``efSearch`` candidates are better than the next one to expand, so the nodes visited, and the
exact top 20 among them, depend on ``efSearch`` alone. On the benchmark bundle the share of
the exact top 20 found among 80 results equals recall@20 at 20 results at every beam from 48
to 200, so recall@20 at 20 is the recall of the served top 20.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import faiss
import numpy as np

from fairshelf.errors import InvalidArgument
from recsys.index import IndexSettings, VectorIndex, as_matrix, exact_top

# A graph whose best beam is further than this below the recall target is not rebuilt wider.
RETRY_WITHIN = 0.02

# Beams tried by the tuning, smallest first; ``IndexSettings.ef_search`` caps it. Steps of
# 15-25 % where ALS catalogs land (96-192) keep the chosen beam close to the least that would
# do; each step costs one batch search of the calibration queries at build time.
EF_LADDER: tuple[int, ...] = (32, 48, 64, 80, 96, 112, 128, 160, 192, 256, 320, 400, 512)
# Recall is measured at 20 neighbours: the product's recall@20 (see the module docstring).
RECALL_K = 20


def _recall(index: VectorIndex, queries: np.ndarray, truth: np.ndarray) -> float:
    found, _ = index.search(queries, truth.shape[1])
    hits = sum(len(set(t.tolist()) & set(f.tolist())) for t, f in zip(truth, found, strict=True))
    return float(hits / truth.size)


def recall_against_exact(
    index: VectorIndex,
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int = RECALL_K,
) -> float:
    """Measure recall@k of ``index`` against brute-force inner-product search.

    Parameters
    ----------
    index:
        The index under test, built over ``vectors``.
    vectors:
        The indexed vectors.
    queries:
        Query vectors (e.g. a sample of user vectors).
    k:
        Neighbours per query.

    Returns
    -------
    float
        Mean fraction of the exact top-k found by the index (1.0 for a flat index).
    """
    mat = as_matrix(vectors, "vectors")
    q = as_matrix(queries, "queries")
    return _recall(index, q, exact_top(mat, q, min(k, mat.shape[0])))


@dataclass(frozen=True)
class EfChoice:
    """Outcome of :func:`tune_ef_search`.

    Parameters
    ----------
    ef_search:
        The beam width chosen (now set on the index).
    recall:
        Recall@k on the calibration queries at ``ef_search``.
    met:
        Whether ``recall`` reached the target plus the margin; when not, ``ef_search`` is the
        largest beam allowed.
    tried:
        ``(beam, recall)`` for every beam tried, smallest first.
    """

    ef_search: int
    recall: float
    met: bool
    tried: tuple[tuple[int, float], ...] = field(default=())


def tune_ef_search(
    index: VectorIndex,
    vectors: np.ndarray,
    queries: np.ndarray,
    target: float,
    *,
    margin: float = 0.0,
    ceiling: int | None = None,
    k: int = RECALL_K,
) -> EfChoice:
    """Set the smallest beam width on :data:`EF_LADDER` whose recall@k reaches the target.

    The recall found here is measured on the queries the beam was chosen on, so it is
    optimistic; measure the recall to report on other queries (:func:`build_tuned` does).

    Parameters
    ----------
    index:
        HNSW index built over ``vectors``; its ``efSearch`` is changed in place.
    vectors:
        The indexed vectors.
    queries:
        Calibration queries (e.g. a sample of user vectors).
    target:
        Recall@k to reach.
    margin:
        Added to ``target`` (headroom for the sampling error of ``queries``).
    ceiling:
        Largest beam tried (added to the ladder if it is not on it); defaults to the last
        ladder step. When no beam up to it reaches the target, the ceiling is kept.
    k:
        Neighbours per query for the recall.

    Returns
    -------
    EfChoice

    Raises
    ------
    InvalidArgument
        If the index is not HNSW, or the vectors or queries are empty or not finite.
    """
    if index.kind != "hnsw":
        raise InvalidArgument(f"only an HNSW index has a beam to tune, not {index.kind!r}")
    mat = as_matrix(vectors, "vectors")
    q = as_matrix(queries, "queries")
    top = ceiling if ceiling is not None else EF_LADDER[-1]
    ladder = sorted({ef for ef in EF_LADDER if ef < top} | {top})
    truth = exact_top(mat, q, min(k, mat.shape[0]))
    # (Typed as Any: the FAISS stubs do not declare ``hnsw`` on the base index type.)
    faiss_index: Any = index.index
    hnsw = faiss_index.hnsw
    tried: list[tuple[int, float]] = []
    for ef in ladder:
        hnsw.efSearch = ef
        recall = _recall(index, q, truth)
        tried.append((ef, recall))
        if recall >= target + margin:
            return EfChoice(ef, recall, True, tuple(tried))
    return EfChoice(ladder[-1], tried[-1][1], False, tuple(tried))


@dataclass(frozen=True)
class TunedIndex:
    """An index built by :func:`build_tuned`, with the recall it was measured at.

    Parameters
    ----------
    index:
        The index, its beam width set.
    recall_at_20:
        Recall@20 on the held-out queries at the chosen beam: the figure to record.
    choice:
        The beam tuning on the calibration queries; ``None`` for an exact index.
    n_calibration, n_held_out:
        Calibration and held-out query counts (disjoint samples).
    """

    index: VectorIndex
    recall_at_20: float
    choice: EfChoice | None
    n_calibration: int
    n_held_out: int
    reason: str = ""
    hnsw_m: int | None = None
    p99_ms: float | None = None
    exact_p99_ms: float | None = None


def split_queries(
    queries: np.ndarray, seed: int, calibration: int = 2000, held_out: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random samples of query rows: one to choose a beam on, one to measure.

    Parameters
    ----------
    queries:
        ``(n, dim)`` query vectors; all-zero rows (users without interactions) are left out,
        since every item ties for them and their recall means nothing.
    seed:
        Seed of the samples.
    calibration, held_out:
        Most rows in each sample. With fewer rows available, half (at most ``held_out``)
        are held out and the rest calibrate.

    Returns
    -------
    (calibration, held_out):
        float32 arrays; both empty when no non-zero row is left, the held-out one empty when
        only one is.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    q = q[np.any(q != 0, axis=1)]
    order = np.random.default_rng(seed).permutation(len(q))
    n_hold = min(held_out, len(q) // 2)
    n_cal = min(calibration, len(q) - n_hold)
    return q[order[n_hold : n_hold + n_cal]], q[order[:n_hold]]


def build_tuned(
    vectors: np.ndarray,
    queries: np.ndarray,
    settings: IndexSettings | None = None,
    *,
    seed: int = 0,
    calibration: int = 2000,
    held_out: int = 1000,
) -> TunedIndex:
    """Build an index, choose its beam on some queries and measure its recall on others.

    Parameters
    ----------
    vectors:
        ``(n_items, dim)`` item vectors.
    queries:
        Query vectors to sample from (e.g. all user vectors), split by
        :func:`split_queries`. When fewer than two non-zero rows remain, item vectors stand in.
    settings:
        Build settings, recall target and margin, beam ceiling; defaults when omitted.
    seed:
        Seed of the query sample and of its split.
    calibration, held_out:
        Most queries used to choose the beam and to measure the recall.

    Returns
    -------
    TunedIndex

    Notes
    -----
    Catalogs small enough for exact search (:meth:`IndexSettings.exact_reason`) get it, with
    recall 1 and nothing built. Otherwise HNSW is built and its
    beam tuned up to ``settings.ef_search``; when no beam reaches the target, the graph is
    rebuilt once with twice the degree and twice the beam ceiling (only when the first graph came
    within :data:`RETRY_WITHIN` of the target), and when that still falls short the index is
    exact: a recall below the target is never shipped silently. The reason
    and the p99 single-query search time of the index and of exact search are recorded.

    Raises
    ------
    InvalidArgument
        If the vectors are empty, or the vectors or queries are not 2-D or not finite.
    """
    settings = settings or IndexSettings()
    mat = as_matrix(vectors, "vectors")
    if len(queries):
        as_matrix(queries, "queries")
    cal, hold = split_queries(queries, seed, calibration, held_out)
    if len(hold) == 0:
        # Fewer than two users with a vector: the items themselves stand in as queries.
        cal, hold = split_queries(mat, seed, calibration, held_out)
    if len(hold) == 0:
        # At most one non-zero item vector: nothing to split, and any beam finds the item.
        cal = hold = mat[:100]
    exact = VectorIndex.build(mat, replace(settings, exact_below=mat.shape[0] + 1))
    exact_p99 = p99_search_ms(exact, hold)
    small = settings.exact_reason(*mat.shape)
    if small is not None:
        # Exact search finds the exact top 20: its recall is 1 without measuring it.
        return TunedIndex(exact, 1.0, None, len(cal), len(hold), small, None, exact_p99, exact_p99)
    tried = []
    for m, ceiling in (
        (settings.hnsw_m, settings.ef_search),
        (2 * settings.hnsw_m, 2 * settings.ef_search),
    ):
        attempt = replace(settings, hnsw_m=m, ef_search=ceiling)
        index = VectorIndex.build(mat, attempt)
        choice = tune_ef_search(
            index, mat, cal, settings.recall_target, margin=settings.recall_margin, ceiling=ceiling
        )
        tried.append(f"M {m} efSearch {choice.ef_search}: {choice.recall:.4f}")
        if not choice.met and choice.recall < settings.recall_target - RETRY_WITHIN:
            # Doubling the degree lifts recall by about 0.01 on real factors: not worth a
            # second graph when the first is further than that from the target.
            break
        if choice.met:
            recall = recall_against_exact(index, mat, hold, RECALL_K)
            reason = (
                f"HNSW M {m}, efSearch {choice.ef_search}: the smallest beam reaching recall@20 "
                f"{settings.recall_target} + {settings.recall_margin} on calibration users"
            )
            return TunedIndex(
                index,
                recall,
                choice,
                len(cal),
                len(hold),
                reason,
                m,
                p99_search_ms(index, hold),
                exact_p99,
            )
    reason = "HNSW fell short of the recall target (" + "; ".join(tried) + "): exact search"
    return TunedIndex(exact, 1.0, None, len(cal), len(hold), reason, None, exact_p99, exact_p99)


def p99_search_ms(
    index: VectorIndex, queries: np.ndarray, n: int = 200, k: int = RECALL_K
) -> float:
    """99th percentile of single-query search time (ms) over at most ``n`` queries.

    Timed on one thread, as a serving worker searches (its OpenMP pool is one thread):
    the trainer's many threads would split each query and make the figure that of another
    machine.
    """
    if len(queries) == 0:
        return 0.0
    times = []
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for q in queries[:n]:
            t = time.perf_counter()
            index.search(q, k)
            times.append(time.perf_counter() - t)
    finally:
        faiss.omp_set_num_threads(threads)
    return float(np.percentile(np.asarray(times) * 1000.0, 99))
