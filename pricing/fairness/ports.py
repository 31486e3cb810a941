"""The interfaces the guard needs from the outside: an audit log and a quote log.

They are Protocols so that pricing stays free of transports and databases: the SQLAlchemy
stores in ``serving/store/`` satisfy them, and so would any other backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from pricing.fairness.audit_chain import Anchor, AuditRecord
from pricing.fairness.quotes import Quote


class AuditSink(Protocol):
    """An append-only, hash-chained audit log (rule G5)."""

    def append(self, kind: str, payload: Mapping[str, Any]) -> AuditRecord:
        """Append one event and return the chained record."""
        ...

    def records(self) -> Iterator[AuditRecord]:
        """Every record in sequence order."""
        ...

    def anchor(self) -> Anchor | None:
        """The separately kept head checkpoint, if any."""
        ...


class QuoteLog(Protocol):
    """Where every served quote is kept, for explanations and audits."""

    def add(self, quotes: Sequence[Quote]) -> None:
        """Store ``quotes`` (all or nothing)."""
        ...

    def get(self, quote_id: str) -> Quote:
        """The quote with ``quote_id``; raises :class:`~fairshelf.errors.NotFound`."""
        ...

    def iter_quotes(self) -> Iterator[Quote]:
        """Every quote (the audits accept any order)."""
        ...
