"""Everything ``fairshelf audit verify`` checks, in one pass (rule G5).

1. The hash chain of the audit log, against its ``audit_head`` (:mod:`audit_chain`).
2. Every sealed quote batch, recomputed from the quote-log rows (:mod:`quote_batches`).
3. When checkpoint sources are given: every checkpoint's signature, the checkpoints' own chain
   in each source (numbering, ``prev`` links, time and seq never going back), agreement between
   sources, and that the log still holds what each checkpoint signed (the record at its ``seq``
   has its ``head_hash``, and the batches up to it seal ``tree_size`` quotes).

Without checkpoints only the log's internal consistency is checked: someone able to rewrite the
database can recompute every hash, and only a copy of the head kept elsewhere shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pricing.fairness.audit_chain import Anchor, AuditRecord, ChainReport, verify_chain
from pricing.fairness.checkpoints import Checkpoint, signature_problem
from pricing.fairness.quote_batches import BATCH_KIND, BatchReport, verify_batches


@dataclass(frozen=True)
class CheckpointSource:
    """The checkpoints found in one place (a sink), in the order that place keeps them."""

    name: str
    checkpoints: Sequence[Checkpoint]


@dataclass(frozen=True)
class Finding:
    """One break: its kind, the audit ``seq`` it concerns (None: none in particular), why."""

    kind: str
    seq: int | None
    message: str


@dataclass
class EvidenceReport:
    """The outcome of :func:`verify_evidence`; ``findings`` are ordered, first break first."""

    chain: ChainReport
    batches: BatchReport
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    anchored: bool = False

    @property
    def ok(self) -> bool:
        """No finding."""
        return not self.findings


def verify_evidence(
    records: Iterable[AuditRecord],
    anchor: Anchor | None,
    batch_rows: Iterable[tuple[int | None, Sequence[Any]]],
    sources: Sequence[CheckpointSource] = (),
    keys: Mapping[str, Ed25519PublicKey] | None = None,
    later: Callable[[int], Iterable[AuditRecord]] | None = None,
) -> EvidenceReport:
    """Check the chain, every quote batch and every checkpoint.

    Parameters
    ----------
    records:
        The audit log in stored order.
    anchor:
        The head kept in ``audit_head``.
    batch_rows:
        The quote-log rows as :func:`~pricing.fairness.quote_batches.verify_batches` takes
        them.
    sources:
        Checkpoint sources; none means only internal consistency can be checked.
    keys:
        Public keys by key id.
    later:
        Reads the records after a seq, for batches sealed while the check ran
        (:func:`~pricing.fairness.quote_batches.verify_batches`).

    Returns
    -------
    EvidenceReport
    """
    rows = list(records)
    chain = verify_chain(rows, anchor)
    batches = verify_batches(rows, batch_rows, later)
    report = EvidenceReport(chain, batches, anchored=bool(sources))
    if not chain.ok:
        report.findings.append(Finding(chain.problem or "broken", chain.bad_seq, chain.message))
    report.findings += [Finding(f.kind, f.batch_seq, f.message) for f in batches.findings]
    if sources:
        _check_checkpoints(rows, sources, keys or {}, report)
    else:
        report.notes.append(
            "no checkpoints given: only the log's internal consistency was checked; someone "
            "who can write the database could have rewritten it and recomputed every hash"
        )
    report.findings.sort(key=lambda f: (f.seq is None, f.seq or 0))
    return report


def _check_checkpoints(
    rows: list[AuditRecord],
    sources: Sequence[CheckpointSource],
    keys: Mapping[str, Ed25519PublicKey],
    report: EvidenceReport,
) -> None:
    valid: dict[int, tuple[Checkpoint, str]] = {}
    last_n: dict[str, int] = {}
    for source in sources:
        good = _check_source(source, keys, report)
        last_n[source.name] = good[-1].n if good else 0
        for cp in good:
            seen = valid.get(cp.n)
            if seen is not None and seen[0].digest() != cp.digest():
                report.findings.append(
                    Finding(
                        "forked",
                        cp.seq,
                        f"checkpoint {cp.n} differs between {seen[1]} and {source.name}: "
                        "two histories were signed",
                    )
                )
            valid.setdefault(cp.n, (cp, source.name))
    newest = max(valid, default=0)
    for name, n in last_n.items():
        if n < newest:
            holder = valid[newest][1]
            report.findings.append(
                Finding(
                    "missing_checkpoint",
                    None,
                    f"{name} lost its last checkpoint(s) {n + 1}..{newest} ({holder} has them)",
                )
            )
    _against_log(rows, [valid[n][0] for n in sorted(valid)], report)


def _check_source(
    source: CheckpointSource, keys: Mapping[str, Ed25519PublicKey], report: EvidenceReport
) -> list[Checkpoint]:
    """The checkpoints of one source that are signed and in order; findings for the rest."""
    good: list[Checkpoint] = []
    for cp in source.checkpoints:
        problem = signature_problem(cp, keys)
        if problem is not None:
            kind = "unknown_key" if cp.key_id not in keys else "bad_signature"
            report.findings.append(Finding(kind, cp.seq, f"{source.name}: {problem}"))
            continue
        prev = good[-1] if good else None
        if prev is not None and (cp.n <= prev.n or cp.seq < prev.seq or cp.time < prev.time):
            report.findings.append(
                Finding(
                    "replayed",
                    cp.seq,
                    f"{source.name}: checkpoint {cp.n} (seq {cp.seq}, {cp.time}) comes after "
                    f"checkpoint {prev.n} (seq {prev.seq}, {prev.time}): an old checkpoint "
                    "was replayed as the latest",
                )
            )
            continue
        expected = 1 if prev is None else prev.n + 1
        if cp.n > expected:
            report.findings.append(
                Finding(
                    "missing_checkpoint",
                    cp.seq,
                    f"{source.name}: checkpoints {expected}..{cp.n - 1} are missing",
                )
            )
        elif prev is not None and cp.prev != prev.digest():
            report.findings.append(
                Finding(
                    "forked",
                    cp.seq,
                    f"{source.name}: checkpoint {cp.n} does not follow checkpoint {prev.n} "
                    "(prev digest differs)",
                )
            )
            continue
        good.append(cp)
    if good:
        report.checked.append(
            f"{source.name}: checkpoints {good[0].n}..{good[-1].n} verified ({len(good)}), "
            f"the last signing seq {good[-1].seq} at {good[-1].time}"
        )
    else:
        report.checked.append(f"{source.name}: no checkpoint could be verified")
    return good


def _against_log(
    rows: list[AuditRecord], checkpoints: list[Checkpoint], report: EvidenceReport
) -> None:
    """That the log still holds what each checkpoint signed."""
    by_seq = {r.seq: r for r in rows}
    sealed: dict[int, int] = {}
    total = 0
    for r in sorted(rows, key=lambda r: r.seq):
        if r.kind == BATCH_KIND:
            total += int(r.payload.get("rows", 0))
        sealed[r.seq] = total
    last = max(by_seq, default=0)
    matched = 0
    for cp in checkpoints:
        record = by_seq.get(cp.seq)
        if cp.seq > last or (record is None and cp.seq > 0):
            report.findings.append(
                Finding(
                    "truncated",
                    last + 1,
                    f"checkpoint {cp.n} signed the log up to seq {cp.seq}, but it ends at seq "
                    f"{last}: records were cut off (with the head)",
                )
            )
            break
        if (record is not None and record.hash != cp.head_hash) or sealed.get(cp.seq, 0) != (
            cp.tree_size
        ):
            report.findings.append(
                Finding(
                    "rewritten",
                    cp.seq,
                    f"the log no longer holds what checkpoint {cp.n} signed (seq {cp.seq}): it "
                    f"was rewritten between seq {matched + 1} and seq {cp.seq}",
                )
            )
            break
        matched = cp.seq
    if checkpoints and matched == checkpoints[-1].seq and last > matched:
        report.notes.append(
            f"records seq {matched + 1}..{last} are not covered by a checkpoint yet"
        )
