"""FAISS index over item vectors: exact search for small catalogs, HNSW above a threshold.

Small means few multiply-adds per query (items x dim), the cost exact search pays.

The same wrapper is used by the trainer (build, measure recall, save into the bundle) and by
serving (load, search), so that the served index is the one whose recall was measured.
Scores are inner products; vectors are float32 and C-contiguous.

HNSW graph for inner products
-----------------------------
An HNSW graph built with the inner product as its similarity navigates badly on
un-normalised factors (ALS, two-tower): a few large-norm items dominate every neighbour list
and most of the catalog sits in a flat region where all scores are near zero (recall@20 0.68
at ``efSearch`` 128 on the 100k-item serving benchmark). The graph is therefore built with
the MIPS-to-L2 reduction: item ``x`` becomes ``[x, sqrt(M² - |x|²)]`` with ``M`` the largest
item norm, query ``q`` becomes ``[q, 0]``, and ``|[q, 0] - [x, ...]|² = |q|² + M² - 2 q·x``.
For a fixed query that squared distance is a decreasing function of ``q·x``, and an HNSW
search only ever compares distances from the query to graph nodes, so walking the L2 graph
by inner product on the original vectors visits exactly the nodes the L2 search on the
augmented vectors would. The graph is thus attached to an ordinary inner-product
``IndexHNSWFlat`` over the original vectors: queries stay ``dim``-dimensional, scores are the
exact inner products, the file is a plain FAISS HNSW index (no transform parameters to
store, older files load unchanged) and ``efSearch`` can be tuned as before.

The graph layers are also assigned by norm instead of at random: an item's inner product
with a query is at most ``|q| |x|``, so the top results of any query come from the
large-norm end of the catalog (on the benchmark bundle every exact top-20 item is among the
5.5 % largest norms). Putting the largest-norm items in the upper layers, with the usual
HNSW layer sizes, makes the greedy descent start from and move between items that can win,
instead of random items in the low-norm mass; this lifts recall@20 from 0.90 to 0.99 at
``efSearch`` 128 on the benchmark bundle (norm layers alone, on the inner-product graph,
do not help: 0.67).

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
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from fairshelf.errors import InvalidArgument

IndexKind = Literal["flat", "hnsw"]
# A graph whose best beam is further than this below the recall target is not rebuilt wider.
RETRY_WITHIN = 0.02

# Beams tried by the tuning, smallest first; ``IndexSettings.ef_search`` caps it. Steps of
# 15-25 % where ALS catalogs land (96-192) keep the chosen beam close to the least that would
# do; each step costs one batch search of the calibration queries at build time.
EF_LADDER: tuple[int, ...] = (32, 48, 64, 80, 96, 112, 128, 160, 192, 256, 320, 400, 512)
# Recall is measured at 20 neighbours: the product's recall@20 (see the module docstring).
RECALL_K = 20


@dataclass(frozen=True)
class IndexSettings:
    """How to build an index.

    Parameters
    ----------
    exact_below:
        When set, catalogs with fewer vectors than this get an exact (flat) index and larger
        ones HNSW, whatever the dimension. ``None`` (the default) decides by
        ``exact_max_work`` instead.
    exact_max_work:
        Exact search while ``items x dim`` (multiply-adds per query) is at most this. 4
        million: a 50,000 x 64 catalog (3.2 million) answers a query in 0.5 ms p50 / 0.6 ms
        p99 on one core, the budget of one Recommend's retrieval, with recall 1 and nothing
        to build; 100,000 x 64 takes 1-5 ms there, and HNSW 0.2 ms.
    hnsw_m:
        HNSW graph degree.
    ef_construction:
        HNSW build-time beam width. 400 rather than 200: on the serving benchmark's ALS
        factors it lifts recall@20 at ``ef_search`` 128 from 0.989 to 0.996 for twice the
        (offline) build time, leaving the per-query cost unchanged.
    ef_search:
        Largest HNSW query-time beam width :func:`build_tuned` may choose, and the beam of an
        index built without queries to tune on (:meth:`VectorIndex.build`). 256 leaves room
        above what ALS catalogs have needed (112 on the 100,000-item benchmark bundle, 192 on
        the tests' 20,000 items), so that a harder catalog gets a wider beam rather than a
        recall below the target.
    recall_target:
        Recall@20 the tuned beam must reach (the product requirement is 0.99).
    recall_margin:
        Added to ``recall_target`` on the calibration queries, so that recall on other
        queries (the figure recorded) still reaches the target. 0.003 is 1.5-2 standard
        errors of the difference between 2,000 calibration and 1,000 held-out queries near
        recall 0.99 on ALS factors (per-query standard deviation 0.04-0.05).
    """

    exact_below: int | None = None
    exact_max_work: int = 4_000_000
    hnsw_m: int = 32
    ef_construction: int = 400
    ef_search: int = 256
    recall_target: float = 0.99
    recall_margin: float = 0.003

    def __post_init__(self) -> None:
        minima = {
            "exact_below": 0,
            "exact_max_work": 0,
            "hnsw_m": 2,
            "ef_construction": 1,
            "ef_search": 1,
        }
        for name, least in minima.items():
            value = getattr(self, name)
            if name == "exact_below" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise InvalidArgument(
                    f"index setting {name} must be an integer >= {least}, got {value!r}",
                    field=name,
                )
        if not 0.0 < self.recall_target <= 1.0:
            raise InvalidArgument(
                f"index setting recall_target must be in (0, 1], got {self.recall_target!r}",
                field="recall_target",
            )
        if not 0.0 <= self.recall_margin < 1.0:
            raise InvalidArgument(
                f"index setting recall_margin must be in [0, 1), got {self.recall_margin!r}",
                field="recall_margin",
            )
        if self.recall_target + self.recall_margin > 1.0:
            # Recall cannot exceed 1: such a goal would always fall back to the ceiling beam.
            raise InvalidArgument(
                f"index settings recall_target + recall_margin must be <= 1, got "
                f"{self.recall_target!r} + {self.recall_margin!r}",
                field="recall_margin",
            )

    def exact_reason(self, n: int, dim: int) -> str | None:
        """Why a catalog of ``n`` vectors of ``dim`` gets exact search; ``None``: HNSW."""
        if self.exact_below is not None:
            if n < self.exact_below:
                return f"{n} items < exact_below {self.exact_below}: exact search"
            return None
        if n * dim <= self.exact_max_work:
            return (
                f"{n} items x {dim} dims = {n * dim:,} multiply-adds per query <= "
                f"exact_max_work {self.exact_max_work:,}: exact search"
            )
        return None


def _as_matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidArgument(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    # The method form: np.all() adds a dispatch layer, paid on every served search.
    if not np.isfinite(arr).all():
        raise InvalidArgument(f"{name} contains NaN or infinite values")
    return arr


def _levels_by_norm(norms: np.ndarray, m: int) -> np.ndarray:
    """HNSW layer of each item (0 = bottom only), the largest norms on top.

    Parameters
    ----------
    norms:
        ``(n,)`` item norms.
    m:
        HNSW degree; layer ``l`` holds about ``n / m**l`` items, the sizes FAISS draws at
        random (its level multiplier is ``1 / ln(m)``).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` int32 top layer per item.
    """
    n = len(norms)
    rank = np.empty(n, dtype=np.int64)
    # Stable so that equal norms keep item order and the build is reproducible.
    rank[np.argsort(-norms, kind="stable")] = np.arange(n)
    levels = np.zeros(n, dtype=np.int32)
    size = n / m
    level = 1
    while size >= 1.0:
        levels[rank < size] = level
        size /= m
        level += 1
    return levels


def _mips_hnsw(mat: np.ndarray, settings: IndexSettings) -> faiss.IndexHNSWFlat:
    """Inner-product HNSW index whose graph is built on the MIPS-to-L2 augmented vectors.

    See the module docstring for why the traversal is unchanged and why layers follow norms.

    Parameters
    ----------
    mat:
        ``(n, dim)`` float32 C-contiguous item vectors.
    settings:
        HNSW degree, build and search beam widths.

    Returns
    -------
    faiss.IndexHNSWFlat
        ``METRIC_INNER_PRODUCT`` index over ``mat`` with ``efSearch`` set.
    """
    n, d = mat.shape
    # float64 so that sqrt(M² - |x|²) of the largest-norm items is not lost to cancellation.
    sq = np.einsum("ij,ij->i", mat, mat, dtype=np.float64)
    extra = np.sqrt(np.maximum(sq.max() - sq, 0.0))
    aug = np.empty((n, d + 1), dtype=np.float32)
    aug[:, :d] = mat
    aug[:, d] = extra
    graph = faiss.IndexHNSWFlat(d + 1, settings.hnsw_m, faiss.METRIC_L2)
    graph.hnsw.efConstruction = settings.ef_construction
    # FAISS uses preset layers when hnsw.levels already has one entry per vector after the
    # storage add; entries are layer + 1.
    levels = _levels_by_norm(np.sqrt(sq), settings.hnsw_m) + 1
    faiss.copy_array_to_vector(levels.astype(np.int32), graph.hnsw.levels)
    graph.add(aug)
    index = faiss.IndexHNSWFlat(d, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    # Assigning the struct copies the graph (layers, neighbour lists, entry point).
    index.hnsw = graph.hnsw
    # The copied graph carries the L2 flag; the search must maximise the inner product.
    # (Typed as Any: the FAISS stubs do not declare this field.)
    struct: Any = index.hnsw
    struct.is_similarity = True
    index.hnsw.efSearch = settings.ef_search
    index.storage.add(mat)
    index.ntotal = n
    return index


class VectorIndex:
    """Inner-product nearest-neighbour search over a fixed set of item vectors.

    Parameters
    ----------
    index:
        A FAISS index using the inner-product metric.
    kind:
        ``"flat"`` (exact) or ``"hnsw"`` (approximate).
    """

    def __init__(self, index: faiss.Index, kind: IndexKind) -> None:
        self.index = index
        self.kind: IndexKind = kind
        # Read once: each read of a FAISS field is a SWIG call, and every search checks it.
        self._dim = int(index.d)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self._dim

    @property
    def size(self) -> int:
        """Number of indexed vectors."""
        return int(self.index.ntotal)

    @property
    def ef_search(self) -> int | None:
        """HNSW query beam width (saved with the index); ``None`` for an exact index."""
        hnsw = getattr(self.index, "hnsw", None)
        return None if hnsw is None else int(hnsw.efSearch)

    @classmethod
    def build(cls, vectors: np.ndarray, settings: IndexSettings | None = None) -> VectorIndex:
        """Build an exact or HNSW index over ``vectors`` (row i = item index i).

        Parameters
        ----------
        vectors:
            ``(n_items, dim)`` float array.
        settings:
            Size threshold and HNSW parameters; defaults when omitted.

        Returns
        -------
        VectorIndex

        Raises
        ------
        InvalidArgument
            If the array is empty, not 2-D, or not finite.
        """
        settings = settings or IndexSettings()
        mat = _as_matrix(vectors, "vectors")
        n, d = mat.shape
        if settings.exact_reason(n, d) is not None:
            flat = faiss.IndexFlatIP(d)
            flat.add(mat)
            return cls(flat, "flat")
        return cls(_mips_hnsw(mat, settings), "hnsw")

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the top ``k`` item indices and scores for each query row.

        Parameters
        ----------
        queries:
            ``(n_queries, dim)`` or ``(dim,)`` float array.
        k:
            Number of neighbours; capped at the index size.

        Returns
        -------
        (indices, scores):
            ``(n_queries, k)`` int64 item indices (``-1`` where fewer exist) and float32 scores,
            best first.

        Raises
        ------
        InvalidArgument
            If ``k`` < 1 or the query dimension differs from the index.
        """
        if k < 1:
            raise InvalidArgument(f"k must be >= 1, got {k}", field="k")
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        q = _as_matrix(q, "queries")
        if q.shape[1] != self.dim:
            raise InvalidArgument(f"query dimension {q.shape[1]} != index dimension {self.dim}")
        scores, ids = self.index.search(q, min(k, self.size))
        return ids.astype(np.int64), scores.astype(np.float32)

    def save(self, path: str | Path) -> None:
        """Write the index to ``path`` (FAISS native format)."""
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: str | Path) -> VectorIndex:
        """Read an index written by :meth:`save`."""
        index = faiss.read_index(str(path))
        kind: IndexKind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        return cls(index, kind)


def exact_top(mat: np.ndarray, queries: np.ndarray, k: int, batch: int = 4096) -> np.ndarray:
    """Indices of the ``k`` rows of ``mat`` with the highest inner product, per query row.

    Brute force (FAISS ``IndexFlatIP``), ``batch`` queries at a time so that the result arrays
    of a large query set are filled in place rather than held twice.

    Returns
    -------
    numpy.ndarray
        ``(n_queries, k)`` int64 row indices, best first.
    """
    exact = faiss.IndexFlatIP(mat.shape[1])
    exact.add(np.ascontiguousarray(mat, dtype=np.float32))
    q = np.ascontiguousarray(queries, dtype=np.float32)
    out = np.empty((q.shape[0], k), dtype=np.int64)
    for lo in range(0, q.shape[0], batch):
        _, found = exact.search(q[lo : lo + batch], k)
        out[lo : lo + found.shape[0]] = found
    return out


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
    mat = _as_matrix(vectors, "vectors")
    q = _as_matrix(queries, "queries")
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
    mat = _as_matrix(vectors, "vectors")
    q = _as_matrix(queries, "queries")
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
    mat = _as_matrix(vectors, "vectors")
    if len(queries):
        _as_matrix(queries, "queries")
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
