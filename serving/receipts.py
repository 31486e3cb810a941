"""Reads what a quote's receipt needs from the stores and the checkpoint sinks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fairshelf.errors import FailedPrecondition
from pricing.fairness.checkpoints import Checkpoint
from pricing.fairness.receipts import build_receipt
from serving.store.audit_store import AuditStore
from serving.store.checkpoint_sinks import CheckpointSink, iter_covering
from serving.store.quote_store import QuoteStore


def quote_receipt(
    quote_id: str, quotes: QuoteStore, audit: AuditStore, sinks: Sequence[CheckpointSink]
) -> dict[str, Any]:
    """The receipt of ``quote_id`` (see :func:`~pricing.fairness.receipts.build_receipt`).

    Raises
    ------
    NotFound
        No quote has that id.
    FailedPrecondition
        The quote is in no sealed batch (logged before batches were sealed), or its batch
        record is gone.
    """
    quote = quotes.get(quote_id)
    found = quotes.batch_of(quote_id)
    if found is None:
        raise FailedPrecondition(f"quote {quote_id} is in no sealed batch", field="quote_id")
    seq, rows = found
    sealed = audit.records_between(seq - 1, seq)
    if not sealed:
        raise FailedPrecondition(
            f"the audit record of quote {quote_id}'s batch (seq {seq}) is missing",
            field="quote_id",
        )
    checkpoint: Checkpoint | None = None
    for sink in sinks:
        checkpoint = next(iter_covering(sink, seq), None)
        if checkpoint is not None:
            break
    chain = [] if checkpoint is None else audit.records_between(seq, checkpoint.seq)
    return build_receipt(quote.to_json(), rows, sealed[0], chain, checkpoint)
