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

The build-time choice of the query beam and the recall measurements live in
:mod:`recsys.index_tuning`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from fairshelf.errors import InvalidArgument

IndexKind = Literal["flat", "hnsw"]


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
        Largest HNSW query-time beam width :func:`recsys.index_tuning.build_tuned` may
        choose, and the beam of an index built without queries to tune on
        (:meth:`VectorIndex.build`). 256 leaves room
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


def as_matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 2-D array, refused when empty or not finite."""
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
        mat = as_matrix(vectors, "vectors")
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
        q = as_matrix(q, "queries")
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
