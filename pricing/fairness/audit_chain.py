"""The hash chain of the audit log (rule G5), in pure Python so anyone can re-check it.

Each record is ``(seq, ts, kind, payload, prev_hash, hash)``. ``hash`` is the SHA-256 (hex) of
the canonical JSON of ``{"seq", "ts", "kind", "payload", "prev_hash"}``: keys sorted, separators
``","`` and ``":"``, UTF-8, no ASCII escaping. ``prev_hash`` is the previous record's ``hash``
(64 zeros for the first record). ``seq`` starts at 1 and grows by one.

:func:`verify_chain` walks the records in stored order and names the first bad one and why:
edited (content no longer matches its hash), deleted (a gap), reordered (a record out of place
or renumbered) or truncated (the chain ends before its anchor, a separately kept
``(seq, hash)`` of the head). The same rule, with only the standard library, is in
``docs/fairness.md`` so a regulator can check an export independently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

GENESIS_HASH: Final[str] = "0" * 64


def canonical_bytes(
    seq: int, ts: str, kind: str, payload: Mapping[str, Any], prev_hash: str
) -> bytes:
    """The exact bytes that are hashed for one record."""
    body = {"seq": seq, "ts": ts, "kind": kind, "payload": payload, "prev_hash": prev_hash}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(seq: int, ts: str, kind: str, payload: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 hex of :func:`canonical_bytes`."""
    return hashlib.sha256(canonical_bytes(seq, ts, kind, payload, prev_hash)).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One audit-log record."""

    seq: int
    ts: str
    kind: str
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str

    def computed_hash(self, seq: int | None = None) -> str:
        """The hash this record's content gives (optionally as if it had sequence ``seq``)."""
        return record_hash(
            self.seq if seq is None else seq, self.ts, self.kind, self.payload, self.prev_hash
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready form used in exports."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "payload": dict(self.payload),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRecord:
        """Inverse of :meth:`to_json`."""
        return cls(
            seq=int(data["seq"]),
            ts=str(data["ts"]),
            kind=str(data["kind"]),
            payload=dict(data["payload"]),
            prev_hash=str(data["prev_hash"]),
            hash=str(data["hash"]),
        )


def utc_timestamp(at: datetime | None = None) -> str:
    """ISO-8601 UTC timestamp with microseconds, the form stored in ``ts``."""
    return (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def next_record(
    prev: AuditRecord | None, kind: str, payload: Mapping[str, Any], ts: str | None = None
) -> AuditRecord:
    """Build the record that follows ``prev`` (or the first record).

    Parameters
    ----------
    prev:
        The current head of the chain, or None for an empty log.
    kind:
        Event kind (``"g2_violation"``, ``"optout_changed"``, ...).
    payload:
        JSON-serialisable details. Round-tripped through JSON so the stored form hashes alike.
    ts:
        Timestamp; now by default.

    Returns
    -------
    AuditRecord
        The new head.
    """
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.hash
    stamp = ts or utc_timestamp()
    body = json.loads(json.dumps(dict(payload), sort_keys=True, ensure_ascii=False))
    return AuditRecord(
        seq, stamp, kind, body, prev_hash, record_hash(seq, stamp, kind, body, prev_hash)
    )


@dataclass(frozen=True)
class Anchor:
    """A separately kept checkpoint of the head: the chain must reach it."""

    seq: int
    hash: str


@dataclass(frozen=True)
class ChainReport:
    """The outcome of :func:`verify_chain`.

    ``problem`` is one of ``"edited"``, ``"deleted"``, ``"reordered"``, ``"inserted"``,
    ``"truncated"`` or None; ``bad_seq`` is the first sequence number at fault.
    """

    ok: bool
    records: int
    head: Anchor | None
    bad_seq: int | None = None
    problem: str | None = None
    message: str = ""


def _bad(records: int, head: Anchor | None, seq: int, problem: str, message: str) -> ChainReport:
    return ChainReport(False, records, head, seq, problem, message)


def _original_seq(r: AuditRecord, by_hash: Mapping[str, AuditRecord]) -> int | None:
    """The seq ``r`` was written with, when its content is intact but its seq was changed."""
    linked = by_hash.get(r.prev_hash)
    candidates = [1] if r.prev_hash == GENESIS_HASH else []
    if linked is not None:
        candidates.append(linked.seq + 1)
    # Renumbering usually moves a record a short way; only searched once something is wrong.
    candidates += range(max(1, r.seq - 64), r.seq + 65)
    for seq in candidates:
        if seq != r.seq and r.computed_hash(seq) == r.hash:
            return seq
    return None


def verify_chain(records: Iterable[AuditRecord], anchor: Anchor | None = None) -> ChainReport:
    """Check a chain in stored order; name the first bad record and what happened to it.

    Parameters
    ----------
    records:
        The records as stored (database order by seq, or file order).
    anchor:
        The head checkpoint kept elsewhere; without it a cut-off tail cannot be noticed.

    Returns
    -------
    ChainReport
        ``ok`` with the head, or the first problem.
    """
    rows = list(records)
    by_hash = {r.hash: r for r in rows}
    seqs_after: dict[int, int] = {}  # seq -> last position it appears at
    for pos, r in enumerate(rows):
        seqs_after[r.seq] = pos
    prev: AuditRecord | None = None
    for pos, r in enumerate(rows):
        expected_seq = 1 if prev is None else prev.seq + 1
        expected_prev = GENESIS_HASH if prev is None else prev.hash
        head = Anchor(prev.seq, prev.hash) if prev else None
        if r.computed_hash() != r.hash:
            # A record whose content hashes right under another seq was renumbered (moved).
            original = _original_seq(r, by_hash)
            if original is not None:
                return _bad(
                    pos,
                    head,
                    r.seq,
                    "reordered",
                    f"record at seq {r.seq} was written as seq {original}: records were reordered",
                )
            return _bad(
                pos,
                head,
                r.seq,
                "edited",
                f"record seq {r.seq} ({r.kind}) was edited: its content no longer matches its hash",
            )
        if r.seq == expected_seq and r.prev_hash == expected_prev:
            prev = r
            continue
        if r.seq < expected_seq:
            return _bad(
                pos,
                head,
                r.seq,
                "reordered",
                f"record seq {r.seq} appears after seq {expected_seq - 1}: records were reordered",
            )
        if r.seq > expected_seq:
            if seqs_after.get(expected_seq, -1) > pos:
                return _bad(
                    pos,
                    head,
                    expected_seq,
                    "reordered",
                    f"record seq {expected_seq} appears after seq {r.seq}: records were reordered",
                )
            missing = (
                f"seq {expected_seq}"
                if r.seq == expected_seq + 1
                else f"seqs {expected_seq}..{r.seq - 1}"
            )
            return _bad(
                pos,
                head,
                expected_seq,
                "deleted",
                f"record {missing} deleted: seq {r.seq} follows seq {expected_seq - 1}",
            )
        # Right number, wrong link: the record before it was replaced, or this one was forged.
        return _bad(
            pos,
            head,
            r.seq,
            "inserted",
            f"record seq {r.seq} does not link to seq {expected_seq - 1} (prev_hash mismatch): "
            "a record was deleted and the rest renumbered, or a forged record was inserted",
        )
    head = Anchor(prev.seq, prev.hash) if prev else None
    if anchor is not None:
        by_seq = {r.seq: r for r in rows}
        at = by_seq.get(anchor.seq)
        if at is None:
            last = head.seq if head else 0
            return _bad(
                len(rows),
                head,
                last + 1,
                "truncated",
                f"log ends at seq {last} but its anchor says seq {anchor.seq}: "
                f"the tail after seq {last} was cut off",
            )
        if at.hash != anchor.hash:
            return _bad(
                len(rows),
                head,
                anchor.seq,
                "edited",
                f"record seq {anchor.seq} does not match the anchored hash: the log was rewritten",
            )
    return ChainReport(True, len(rows), head, message=f"{len(rows)} records, chain intact")
