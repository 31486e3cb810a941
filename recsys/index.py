"""FAISS index over item vectors: exact search for small catalogs, HNSW above a threshold.

The same wrapper is used by the trainer (build, measure recall, save into the bundle) and by
serving (load, search), so that the served index is the one whose recall was measured.
Scores are inner products; vectors are float32 and C-contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
        HNSW build-time beam width.
    ef_search:
        HNSW query-time beam width (stored in the index file and in the manifest).
    """

    exact_below: int = 50_000
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128


def _as_matrix(vectors: np.ndarray, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidArgument(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgument(f"{name} contains NaN or infinite values")
    return arr


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
        hnsw = faiss.IndexHNSWFlat(d, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = settings.ef_construction
        hnsw.hnsw.efSearch = settings.ef_search
        hnsw.add(mat)
        return cls(hnsw, "hnsw")

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
