"""Audit-log export (rule G5): JSON Lines a regulator can check with the same rule.

One record per line (``seq``, ``ts``, ``kind``, ``payload``, ``prev_hash``, ``hash``), then one
trailer line ``{"trailer": {"format", "records", "head_seq", "head_hash", "exported_at"}}``.
The trailer carries the anchor, so a file cut short (or a log whose tail was cut before export)
is reported as truncated. The checking rule needs only the Python standard library; it is
written out in ``docs/fairness.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fairshelf.errors import InvalidArgument
from pricing.fairness.audit_chain import (
    Anchor,
    AuditRecord,
    ChainReport,
    utc_timestamp,
    verify_chain,
)

EXPORT_FORMAT = "fairshelf-audit-log/1"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`write_export` wrote."""

    path: Path
    records: int
    head: Anchor | None


def write_export(records: Iterable[AuditRecord], anchor: Anchor | None, path: Path) -> ExportResult:
    """Write records and a trailer to ``path`` atomically (temp file, then rename).

    Parameters
    ----------
    records:
        The log in sequence order.
    anchor:
        The log's separately kept head; the trailer repeats it (else the last record's).
    path:
        The output file.

    Returns
    -------
    ExportResult
        Path, record count and the head written in the trailer.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    last: AuditRecord | None = None
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record.to_json(), sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
            last = record
        head = anchor or (Anchor(last.seq, last.hash) if last else None)
        trailer = {
            "format": EXPORT_FORMAT,
            "records": count,
            "head_seq": head.seq if head else 0,
            "head_hash": head.hash if head else None,
            "exported_at": utc_timestamp(),
        }
        fh.write(json.dumps({"trailer": trailer}, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return ExportResult(path, count, head)


def read_export(path: Path) -> tuple[list[AuditRecord], Anchor | None, bool]:
    """Read an export.

    Returns
    -------
    tuple[list[AuditRecord], Anchor | None, bool]
        The records in file order, the trailer's anchor, and whether a trailer was present.

    Raises
    ------
    InvalidArgument
        A line that is not a record or a trailer (names the line number).
    """
    records: list[AuditRecord] = []
    anchor: Anchor | None = None
    has_trailer = False
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if "trailer" in data:
                    t = data["trailer"]
                    has_trailer = True
                    if t.get("head_hash"):
                        anchor = Anchor(int(t["head_seq"]), str(t["head_hash"]))
                    continue
                records.append(AuditRecord.from_json(data))
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidArgument(
                    f"{path}: line {lineno} is not an audit record ({exc})", field="file"
                ) from exc
    return records, anchor, has_trailer


def verify_export(path: Path) -> ChainReport:
    """Verify an exported file: chain, then the trailer's anchor.

    Returns
    -------
    ChainReport
        As :func:`~pricing.fairness.audit_chain.verify_chain`; a file without its trailer line
        is reported as truncated.
    """
    records, anchor, has_trailer = read_export(path)
    report = verify_chain(records, anchor)
    if report.ok and not has_trailer:
        last = report.head.seq if report.head else 0
        return ChainReport(
            False,
            report.records,
            report.head,
            last + 1,
            "truncated",
            f"{path} has no trailer line after seq {last}: the file was cut off",
        )
    return report
