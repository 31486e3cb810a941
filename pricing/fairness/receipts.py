"""Quote receipts (rules G5, G6): what lets a shopper or a regulator prove one quote offline.

A receipt holds the quote, its leaf (the canonical row, :func:`~pricing.fairness.merkle.
quote_leaf`), its audit path in its batch's Merkle tree, the batch's ``quote_batch`` audit
record, the records that link that record to the first checkpoint signed after it, and that
checkpoint. Checking it needs the standard library, ``cryptography`` and the log's public key
(the script in ``docs/fairness.md``): leaf -> root by the audit path; the batch record's hash;
the chain to the checkpoint's head; the checkpoint's signature. A receipt given out before a
checkpoint covered its batch has ``checkpoint`` null: ask again later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from fairshelf.errors import FailedPrecondition
from pricing.fairness.audit_chain import AuditRecord
from pricing.fairness.checkpoints import Checkpoint
from pricing.fairness.merkle import inclusion_proof, leaf_hash, quote_leaf

RECEIPT_FORMAT: Final[str] = "fairshelf-receipt/1"


def build_receipt(
    quote: Mapping[str, Any],
    rows: Sequence[Sequence[Any]],
    batch: AuditRecord,
    chain: Sequence[AuditRecord],
    checkpoint: Checkpoint | None,
) -> dict[str, Any]:
    """The receipt of ``quote`` in the batch of ``rows`` (leaf columns, in quote_id order).

    Parameters
    ----------
    quote:
        The quote as served (``Quote.to_json``).
    rows:
        Every row of the quote's batch, in ``quote_id`` order.
    batch:
        The batch's ``quote_batch`` audit record.
    chain:
        The records after ``batch`` up to the checkpoint's head (empty without checkpoint).
    checkpoint:
        The first checkpoint whose ``seq`` is the batch's or later, if any yet.

    Returns
    -------
    dict[str, Any]
        ``format``, ``quote``, ``leaf`` (text), ``leaf_index``, ``batch_size``, ``proof`` (hex
        hashes, leaf level first), ``batch``, ``chain``, ``checkpoint``.

    Raises
    ------
    FailedPrecondition
        The quote is not among ``rows`` (the log no longer holds what was sealed).
    """
    ids = [str(r[0]) for r in rows]
    try:
        index = ids.index(str(quote["quote_id"]))
    except ValueError:
        raise FailedPrecondition(
            f"quote {quote['quote_id']} is not in its batch seq {batch.seq}", field="quote_id"
        ) from None
    leaves = [quote_leaf(r) for r in rows]
    hashes = [leaf_hash(leaf) for leaf in leaves]
    return {
        "format": RECEIPT_FORMAT,
        "quote": dict(quote),
        "leaf": leaves[index].decode("utf-8"),
        "leaf_index": index,
        "batch_size": len(rows),
        "proof": [h.hex() for h in inclusion_proof(index, hashes)],
        "batch": batch.to_json(),
        "chain": [r.to_json() for r in chain],
        "checkpoint": None if checkpoint is None else checkpoint.to_json(),
    }
