"""Quote-log batches sealed in the audit log (rule G5): one Merkle root per committed batch.

The quote writer commits quotes in batches. With each batch, in the same transaction, it
appends one ``quote_batch`` audit record whose payload is::

    {"format": "fairshelf-quote-leaf/1", "root": <hex>, "rows": n,
     "first_quote_id": ..., "last_quote_id": ...}

``root`` is the RFC 9162 Merkle root (:mod:`pricing.fairness.merkle`) over the batch's rows in
``quote_id`` order, and every row of the batch stores the record's ``seq`` in its ``batch_seq``
column. A row deleted, edited or inserted later changes a batch's count or root, or sits in no
batch; the audit record itself is hash-chained, and checkpoints sign the chain's head. This
module checks batches against rows; it reads nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pricing.fairness.audit_chain import AuditRecord
from pricing.fairness.merkle import LEAF_FORMAT, leaf_hash, quote_leaf, root_from_hashes

BATCH_KIND: Final[str] = "quote_batch"


def batch_payload(
    hashes: Sequence[bytes],
    first_quote_id: str,
    last_quote_id: str,
    pause: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The payload of the ``quote_batch`` record of a batch with leaf hashes ``hashes``
    (``pause``: see :func:`~pricing.fairness.merkle.root_from_hashes`)."""
    return {
        "format": LEAF_FORMAT,
        "root": root_from_hashes(hashes, pause).hex(),
        "rows": len(hashes),
        "first_quote_id": first_quote_id,
        "last_quote_id": last_quote_id,
    }


@dataclass(frozen=True)
class BatchFinding:
    """One batch (or stray row) that does not match its record.

    ``kind`` is ``quote_deleted`` (fewer rows than sealed), ``quote_inserted`` (more rows, or a
    row in no sealed batch) or ``quote_edited`` (same count, another root).
    """

    kind: str
    batch_seq: int | None
    message: str


@dataclass
class BatchReport:
    """The outcome of :func:`verify_batches`."""

    batches: int = 0
    rows: int = 0
    findings: list[BatchFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No finding."""
        return not self.findings


def verify_batches(
    records: Iterable[AuditRecord],
    rows: Iterable[tuple[int | None, Sequence[Any]]],
    later: Callable[[int], Iterable[AuditRecord]] | None = None,
) -> BatchReport:
    """Recompute every sealed batch from the stored rows.

    Parameters
    ----------
    records:
        The audit log (only ``quote_batch`` records are used), read before ``rows``.
    rows:
        ``(batch_seq, row)`` for every quote-log row, grouped by ``batch_seq`` (rows of no
        batch, ``batch_seq`` None, in any place; within a batch in any order, as leaves are
        ordered by ``quote_id`` here); ``row`` holds the
        :data:`~pricing.fairness.merkle.LEAF_COLUMNS` values as stored.
    later:
        Reads the records after a seq. Rows naming a seq beyond the last of ``records`` were
        sealed after the records were read (writers go on while a check runs): their records
        are read with it, once the rows are read, so no snapshot is needed. Without it such
        rows name no sealed batch.

    Returns
    -------
    BatchReport
        Batches and rows checked, and one finding per batch (or stray row) that fails.
    """
    chain = list(records)
    horizon = max((r.seq for r in chain), default=0)
    sealed = {r.seq: r for r in chain if r.kind == BATCH_KIND}
    report = BatchReport()
    seen: set[int] = set()
    beyond: dict[int, list[Sequence[Any]]] = {}
    for seq, batch in _grouped(rows, report):
        if later is not None and seq > horizon:
            beyond[seq] = batch
            continue
        seen.add(seq)
        _check_one(sealed.get(seq), seq, batch, report)
    if beyond and later is not None:
        sealed.update(
            (r.seq, r) for r in later(horizon) if r.seq in beyond and r.kind == BATCH_KIND
        )
        for seq, batch in sorted(beyond.items()):
            seen.add(seq)
            _check_one(sealed.get(seq), seq, batch, report)
    report.batches = len(sealed)
    for seq in sorted(set(sealed) - seen):
        p = sealed[seq].payload
        report.findings.append(
            BatchFinding(
                "quote_deleted",
                seq,
                f"batch seq {seq} sealed {p['rows']} quote(s) ({p['first_quote_id']}.."
                f"{p['last_quote_id']}); none is left: rows were deleted",
            )
        )
    report.findings.sort(key=lambda f: -1 if f.batch_seq is None else f.batch_seq)
    return report


def _check_one(
    record: AuditRecord | None, seq: int, batch: list[Sequence[Any]], report: BatchReport
) -> None:
    if record is None:
        report.findings.append(
            BatchFinding(
                "quote_inserted",
                seq,
                f"{len(batch)} quote row(s) (first {batch[0][0]}) name batch seq {seq}, "
                "which is no sealed batch: rows were inserted",
            )
        )
        return
    finding = _check(record, batch)
    if finding is not None:
        report.findings.append(finding)


def _grouped(
    rows: Iterable[tuple[int | None, Sequence[Any]]], report: BatchReport
) -> Iterator[tuple[int, list[Sequence[Any]]]]:
    current: int | None = None
    batch: list[Sequence[Any]] = []
    for seq, row in rows:
        report.rows += 1
        if seq is None:
            report.findings.append(
                BatchFinding(
                    "quote_inserted",
                    None,
                    f"quote {row[0]} is in no sealed batch: it was inserted outside the "
                    "quote writer",
                )
            )
            continue
        if seq != current:
            if batch and current is not None:
                yield current, batch
            current, batch = seq, []
        batch.append(row)
    if batch and current is not None:
        yield current, batch


def _check(record: AuditRecord, batch: list[Sequence[Any]]) -> BatchFinding | None:
    p = record.payload
    sealed_rows = int(p["rows"])
    where = f"batch seq {record.seq} ({p['first_quote_id']}..{p['last_quote_id']})"
    if len(batch) < sealed_rows:
        return BatchFinding(
            "quote_deleted",
            record.seq,
            f"{where} sealed {sealed_rows} quotes, {len(batch)} are left: rows were deleted",
        )
    if len(batch) > sealed_rows:
        return BatchFinding(
            "quote_inserted",
            record.seq,
            f"{where} sealed {sealed_rows} quotes, {len(batch)} name it: rows were inserted",
        )
    ordered = sorted(batch, key=lambda row: str(row[0]))
    root = root_from_hashes([leaf_hash(quote_leaf(row)) for row in ordered]).hex()
    if root != p["root"]:
        return BatchFinding(
            "quote_edited",
            record.seq,
            f"{where}: its {sealed_rows} rows no longer hash to the sealed Merkle root: "
            "a row was edited (or replaced)",
        )
    return None
