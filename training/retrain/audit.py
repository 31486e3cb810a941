"""Audit records of the moves of ``current``: which model serves, since when, who chose it, why.

The records go into the same hash-chained log as the pricing decisions (``fairshelf audit
verify`` walks them), so a model change can be read next to the prices it shaped.
"""

from __future__ import annotations

from fairshelf.errors import InvalidArgument
from pricing.fairness.audit_chain import AuditRecord
from pricing.fairness.ports import AuditSink
from training.retrain.registry import Move

KINDS = {
    "publish": "bundle_published",
    "promote": "bundle_promoted",
    "rollback": "bundle_rolled_back",
}


def audit_move(audit: AuditSink, move: Move, bundles_dir: str) -> AuditRecord:
    """Append the record of one move of ``current``.

    Raises
    ------
    InvalidArgument
        Missing actor or reason, or an unknown action.
    """
    if not move.actor.strip():
        raise InvalidArgument("a bundle move needs an actor", field="actor")
    if not move.reason.strip():
        raise InvalidArgument("a bundle move needs a reason", field="reason")
    if move.action not in KINDS:
        raise InvalidArgument(f"unknown bundle move {move.action!r}", field="action")
    return audit.append(
        KINDS[move.action],
        {
            "bundle_id": move.bundle_id,
            "previous": move.previous,
            "actor": move.actor,
            "reason": move.reason,
            "bundles_dir": bundles_dir,
            "at": move.at,
        },
    )
