"""Item-to-item models: EASE (Steck, 2019) and RP3beta (Paudel et al., 2017).

Both score a shopper as ``x_u @ W`` where ``x_u`` is the binary row of items they bought and
``W`` an item-item matrix, the simple models that Dacrema et al. (2019) found hard to beat. The
matrices are kept sparse (the ``top_k`` largest weights of each row), so that the served score
(:mod:`recsys.item_item`) and the evaluated one are the same product over the same matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def binary_purchases(purchases: sp.csr_matrix) -> sp.csr_matrix:
    """The (users x items) 0/1 float32 matrix of who bought what."""
    x = purchases.tocsr().astype(np.float32)
    x.data = (x.data > 0).astype(np.float32)
    x.eliminate_zeros()
    return x


def _sparsify_rows(
    dense: np.ndarray, row_ids: np.ndarray, col_ids: np.ndarray, n_items: int, top_k: int
) -> sp.csr_matrix:
    """Keep the ``top_k`` largest positive entries of each row of ``dense``.

    Row ``r`` of ``dense`` is item ``row_ids[r]``, column ``c`` is item ``col_ids[c]``.
    """
    k = min(top_k, dense.shape[1])
    if k < dense.shape[1]:
        part = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(dense.shape[1]), (dense.shape[0], 1))
    vals = np.take_along_axis(dense, part, axis=1)
    keep = vals > 0
    rows = np.repeat(row_ids, k).reshape(len(row_ids), k)
    return sp.csr_matrix(
        (vals[keep].astype(np.float32), (rows[keep], col_ids[part[keep]])),
        shape=(n_items, n_items),
    )


def ease_matrix(purchases: sp.csr_matrix, lam: float, top_k: int) -> sp.csr_matrix:
    """EASE weights over the items bought at least once, sparsified to ``top_k`` per row.

    ``B = I - P / diag(P)`` with ``P = (XᵀX + λI)⁻¹`` and a zero diagonal: the closed-form
    ridge regression of every item's column on all the others.

    Parameters
    ----------
    purchases:
        (users x items) purchase counts; only whether a count is positive matters.
    lam:
        L2 penalty λ (hundreds on retail baskets).
    top_k:
        Largest positive weights kept per source item (the rest are dropped).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_items, n_items)`` float32; rows and columns of never-bought items are empty.
    """
    x = binary_purchases(purchases)
    n_items = x.shape[1]
    cols = np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() > 0)
    if cols.size == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    xs = x[:, cols]
    gram = (xs.T @ xs).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return _sparsify_rows(b, cols, cols, n_items, top_k)


def rp3beta_matrix(
    purchases: sp.csr_matrix, alpha: float, beta: float, top_k: int
) -> sp.csr_matrix:
    """RP3beta: two-step random-walk item-item probabilities, divided by popularity^beta.

    Parameters
    ----------
    purchases:
        (users x items) purchase counts; only whether a count is positive matters.
    alpha:
        Exponent of the transition probabilities.
    beta:
        Popularity penalty of the target item.
    top_k:
        Largest weights kept per source item.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_items, n_items)`` float32.
    """
    x = binary_purchases(purchases)
    n_items = x.shape[1]
    user_deg = np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)
    pop = np.asarray(x.sum(axis=0)).ravel()
    p_ui = (sp.diags(1.0 / user_deg) @ x).power(alpha).tocsr()
    p_iu = (sp.diags(1.0 / np.maximum(pop, 1.0)) @ x.T).power(alpha).tocsr()
    cols = np.flatnonzero(pop > 0)
    out = []
    # Row blocks bound the dense intermediate to block x n_items.
    for lo in range(0, cols.size, 2048):
        rows = cols[lo : lo + 2048]
        w = (p_iu[rows] @ p_ui).toarray()
        w /= np.power(np.maximum(pop, 1.0), beta)[None, :]
        w[np.arange(len(rows)), rows] = 0.0
        out.append(_sparsify_rows(w, rows, np.arange(n_items), n_items, top_k))
    if not out:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    total = out[0]
    for m in out[1:]:
        total = total + m
    return total.tocsr()
