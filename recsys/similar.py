"""Similar items for a product page (SPEC §5), from the item-vector index.

The index ranks by inner product, which favours items with large vectors (popular ones) over
items that point the same way. Candidates come from the index, then are re-ranked by cosine
similarity to the anchor, so "similar" means similar direction in taste space.
"""

from __future__ import annotations

import numpy as np

from recsys.candidates import EligibleScan, VectorSource, search_candidates
from recsys.filters import CandidateFilter
from recsys.types import Filters


class SimilarItems:
    """Nearest items to an anchor item.

    Parameters
    ----------
    source:
        Item vectors and their index (normally ALS).
    item_filter:
        Catalog filter.
    scan:
        Direct scoring for narrow filters.
    oversample, max_candidates, scan_below:
        Candidate search sizes (see :class:`recsys.config.RecsysConfig`).
    """

    def __init__(
        self,
        source: VectorSource,
        item_filter: CandidateFilter,
        scan: EligibleScan,
        oversample: int,
        max_candidates: int,
        scan_below: int = 0,
    ) -> None:
        self.source = source
        self.filter = item_filter
        self.scan = scan
        self.oversample = oversample
        self.max_candidates = max_candidates
        self.scan_below = scan_below
        norms = np.linalg.norm(source.item_vectors, axis=1)
        # Zero vectors (items never seen in training) get norm 1 so they score 0, not NaN.
        self._norms = np.where(norms > 0, norms, 1.0).astype(np.float32)

    def similar(self, item: int, k: int, filters: Filters) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to item index ``item``, excluding itself.

        Parameters
        ----------
        item:
            Anchor item index.
        k:
            Number wanted.
        filters:
            Catalog filters; ``exclude_purchased`` has no meaning here and is ignored.

        Returns
        -------
        (items, scores):
            int64 indices and float32 cosine similarities, best first.
        """
        query = self.source.item_vectors[item]

        def keep(c: np.ndarray) -> np.ndarray:
            return self.filter.mask(c, filters) & (c != item)

        queries = [(self.source, query)]

        def scan() -> np.ndarray:
            return self.scan.best(queries, filters, keep, k * self.oversample)

        share = self.filter.fraction(filters)
        cands = search_candidates(
            queries,
            k,
            keep,
            scan,
            self.oversample,
            self.max_candidates,
            share,
            prefer_scan=bool(filters.include_categories)
            and share * self.filter.catalog.n_items <= self.scan_below,
        )
        if cands.size == 0:
            return cands, np.empty(0, dtype=np.float32)
        anchor_norm = float(self._norms[item])
        cos = self.source.scores(cands, query) / (self._norms[cands] * anchor_norm)
        top = np.argsort(-cos, kind="stable")[:k]
        return cands[top], cos[top].astype(np.float32)
