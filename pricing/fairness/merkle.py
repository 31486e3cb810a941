"""Merkle trees over quote-log batches (rule G5), hashed as in RFC 6962 / RFC 9162.

Each batch of quotes the quote writer commits is one tree. A leaf is the canonical encoding of
one stored quote-log row (:func:`quote_leaf`); leaves are ordered by ``quote_id``. Hashing uses
the domain separation of RFC 9162 §2.1.1, so a leaf can never be passed off as an inner node:

    leaf hash = SHA-256(0x00 || leaf bytes)
    node hash = SHA-256(0x01 || left hash || right hash)

and a tree of ``n`` leaves splits at ``k``, the largest power of two below ``n``. The empty tree
hashes to SHA-256 of nothing. :func:`inclusion_proof` and :func:`verify_inclusion` are the
audit paths of RFC 9162 §2.1.3, which a receipt carries so that one quote can be checked
against its batch's root without the rest of the batch. Pure Python, standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, Final

#: Name of the leaf encoding, recorded in every batch record so it can change one day.
LEAF_FORMAT: Final[str] = "fairshelf-quote-leaf/1"

#: The quote-log columns of a leaf, in order (the stored row, not the served object).
LEAF_COLUMNS: Final[tuple[str, ...]] = (
    "quote_id",
    "item_id",
    "epoch",
    "context_key",
    "quoted_at",
    "list_price",
    "final_price",
    "tenure",
    "frequency",
    "device",
    "guard_status",
    "blocked_price",
    "lines",
    "detail",
)

_sha256 = hashlib.sha256
_LEAF: Final[bytes] = b"\x00"
_NODE: Final[bytes] = b"\x01"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# JSON string literal without ASCII escaping: what ``_dumps`` writes for a str.
_esc = json.encoder.encode_basestring


def quote_leaf(row: Sequence[Any]) -> bytes:
    """The canonical bytes of one quote-log row: a JSON array of :data:`LEAF_COLUMNS`.

    Integers (``epoch``) as JSON integers, prices as JSON numbers in Python's shortest
    round-trip form of the IEEE double (``12.0``, ``9.99``), ``blocked_price`` ``null`` when
    absent, every other column as the stored string; no spaces, UTF-8 without escaping.

    Parameters
    ----------
    row:
        The 14 values in :data:`LEAF_COLUMNS` order, as stored.

    Returns
    -------
    bytes
        The leaf's bytes (what :func:`leaf_hash` hashes).
    """
    blocked = row[11]
    return _dumps(
        [
            row[0],
            row[1],
            int(row[2]),
            row[3],
            row[4],
            float(row[5]),
            float(row[6]),
            row[7],
            row[8],
            row[9],
            row[10],
            None if blocked is None else float(blocked),
            row[12],
            row[13],
        ]
    ).encode("utf-8")


class QuoteLeafEncoder:
    """:func:`quote_leaf`, byte for byte, at the rate the quote writer needs.

    The long text columns (public context, program lines, decision detail) are shared by every
    quote of one fair decision; their JSON form is kept by text, so a row costs a few short
    escapes and two float reprs instead of a whole JSON encoding (the writer thread shares the
    interpreter with requests).
    """

    def __init__(self, limit: int = 20_000) -> None:
        self._texts: dict[str, str] = {}
        self._limit = limit

    def _text(self, value: str) -> str:
        out = self._texts.get(value)
        if out is None:
            if len(self._texts) > self._limit:
                self._texts.clear()
            out = self._texts[value] = _esc(value)
        return out

    def encode(self, row: Sequence[Any]) -> bytes:
        """The same bytes as :func:`quote_leaf` for ``row``."""
        text = self._text
        blocked = row[11]
        return (
            f"[{_esc(row[0])},{_esc(row[1])},{int(row[2])},{text(row[3])},{_esc(row[4])},"
            f"{float(row[5])!r},{float(row[6])!r},{_esc(row[7])},{_esc(row[8])},"
            f"{_esc(row[9])},{_esc(row[10])},"
            f"{'null' if blocked is None else repr(float(blocked))},"
            f"{text(row[12])},{text(row[13])}]"
        ).encode()


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256 of ``0x00 || leaf``."""
    return _sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256 of ``0x01 || left || right``."""
    return _sha256(_NODE + left + right).digest()


# Node hashes between two calls of ``root_from_hashes``'s ``pause`` (about 0.3 ms).
_PAIRS_PER_PAUSE = 512


def root_from_hashes(hashes: Sequence[bytes], pause: Callable[[], None] | None = None) -> bytes:
    """The root of the tree whose leaf hashes are ``hashes`` (RFC 9162 MTH).

    Pairing level by level and carrying an odd last node up unchanged builds the same
    left-balanced tree as the recursive definition, in one pass per level. ``pause``, when
    given, is called between runs of ``_PAIRS_PER_PAUSE`` pairs (a writer thread gives
    request threads a turn: 5,000 leaves are about 3 ms of hashing).
    """
    if not hashes:
        return _sha256(b"").digest()
    level = list(hashes)
    while len(level) > 1:
        paired: list[bytes] = []
        step = len(level) - 1 if pause is None else 2 * _PAIRS_PER_PAUSE
        for lo in range(0, len(level) - 1, step):
            hi = min(lo + step, len(level) - 1)
            paired += [node_hash(level[i], level[i + 1]) for i in range(lo, hi, 2)]
            if pause is not None:
                pause()
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``hashes`` (RFC 9162 §2.1.3.1).

    Raises
    ------
    IndexError
        ``index`` is not a leaf of the tree.
    """
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf {index} is not in a tree of {len(hashes)} leaves")
    path: list[bytes] = []
    lo, hi = 0, len(hashes)
    # Walk down from the root, remembering the sibling subtree at each split.
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            path.append(root_from_hashes(hashes[lo + k : hi]))
            hi = lo + k
        else:
            path.append(root_from_hashes(hashes[lo : lo + k]))
            lo = lo + k
    path.reverse()
    return path


def verify_inclusion(
    leaf_digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf ``index`` of a ``size``-leaf tree under ``root``.

    The verification algorithm of RFC 9162 §2.1.3.2.
    """
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_digest
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
