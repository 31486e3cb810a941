"""FAISS index over item vectors: exact search for small catalogs, HNSW above a threshold.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from pricing.errors import InvalidArgument

IndexKind = Literal["flat", "hnsw"]


@dataclass(frozen=True)
class IndexSettings:
    """How to build an index.

    Parameters
    ----------
    exact_below:
        Catalogs with fewer vectors than this get an exact (flat) index.
    hnsw_m:
        HNSW graph degree.
    ef_construction:
        HNSW build-time beam width. 400 rather than 200: on the serving benchmark's ALS
        factors it lifts recall@20 at ``ef_search`` 128 from 0.989 to 0.996 for twice the
        (offline) build time, leaving the per-query cost unchanged.
    ef_search:
        HNSW query-time beam width (stored in the index file and in the manifest). 160
        rather than 128 keeps recall@20 at or above 0.99 on smaller ALS catalogs too
        (0.987 -> 0.991 on 20,000 items) for about 20 % more search time.
    """

    exact_below: int = 50_000
    hnsw_m: int = 32
    ef_construction: int = 400
    ef_search: int = 160


def _as_matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidArgument(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
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

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.index.d)

    @property
    def size(self) -> int:
        """Number of indexed vectors."""
        return int(self.index.ntotal)

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
        if n < settings.exact_below:
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


def recall_against_exact(
    index: VectorIndex,
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int = 20,
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
    kk = min(k, mat.shape[0])
    exact = faiss.IndexFlatIP(mat.shape[1])
    exact.add(mat)
    _, truth = exact.search(q, kk)
    found, _ = index.search(q, kk)
    hits = sum(len(set(t.tolist()) & set(f.tolist())) for t, f in zip(truth, found, strict=True))
    return float(hits / (kk * len(q)))
