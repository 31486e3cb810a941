"""Rule G5 in pure Python: the hash chain names edited, deleted, reordered and truncated logs."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from pricing.fairness.audit_chain import (
    GENESIS_HASH,
    Anchor,
    AuditRecord,
    canonical_bytes,
    next_record,
    verify_chain,
)


def _chain(n: int) -> list[AuditRecord]:
    out: list[AuditRecord] = []
    for i in range(n):
        out.append(
            next_record(out[-1] if out else None, "g2_violation", {"item_id": f"sku-{i}", "n": i})
        )
    return out


def _head(records: list[AuditRecord]) -> Anchor:
    return Anchor(records[-1].seq, records[-1].hash)


def test_hash_is_sha256_of_documented_canonical_json() -> None:
    [r] = _chain(1)
    body = {"seq": 1, "ts": r.ts, "kind": r.kind, "payload": r.payload, "prev_hash": GENESIS_HASH}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_bytes(1, r.ts, r.kind, r.payload, GENESIS_HASH) == text.encode()
    assert r.hash == hashlib.sha256(text.encode()).hexdigest()
    assert r.prev_hash == GENESIS_HASH and r.seq == 1


def test_intact_chain_verifies_with_its_anchor() -> None:
    records = _chain(6)
    report = verify_chain(records, _head(records))
    assert report.ok and report.records == 6 and report.head == _head(records)
    assert verify_chain([]).ok


def test_edited_record_is_named() -> None:
    records = _chain(6)
    records[3] = dataclasses.replace(records[3], payload={"item_id": "sku-3", "n": 300})
    report = verify_chain(records, _head(records))
    assert not report.ok and report.problem == "edited" and report.bad_seq == 4
    assert "seq 4" in report.message and "was edited" in report.message


def test_edit_with_recomputed_hash_breaks_the_next_link() -> None:
    records = _chain(6)
    r = records[2]
    forged_payload = {"item_id": "sku-2", "n": -1}
    forged = dataclasses.replace(
        r,
        payload=forged_payload,
        hash=AuditRecord(r.seq, r.ts, r.kind, forged_payload, r.prev_hash, "").computed_hash(),
    )
    records[2] = forged
    report = verify_chain(records, _head(records))
    assert not report.ok and report.bad_seq == 4 and report.problem == "inserted"


def test_deleted_record_is_named() -> None:
    records = _chain(6)
    del records[2]
    report = verify_chain(records, _head(records))
    assert not report.ok and report.problem == "deleted" and report.bad_seq == 3
    assert "seq 3 deleted" in report.message


def test_reordered_lines_are_named() -> None:
    records = _chain(6)
    records[2], records[3] = records[3], records[2]
    report = verify_chain(records, _head(records))
    assert not report.ok and report.problem == "reordered" and report.bad_seq == 3


def test_renumbered_records_are_named_as_reordered() -> None:
    records = _chain(6)
    a, b = records[2], records[3]
    records[2] = dataclasses.replace(b, seq=3)
    records[3] = dataclasses.replace(a, seq=4)
    report = verify_chain(records, _head(records))
    assert not report.ok and report.problem == "reordered"
    assert "was written as seq 4" in report.message


def test_truncated_tail_is_caught_only_with_an_anchor() -> None:
    records = _chain(6)
    anchor = _head(records)
    cut = records[:4]
    assert verify_chain(cut).ok  # without an anchor a shorter chain looks complete
    report = verify_chain(cut, anchor)
    assert not report.ok and report.problem == "truncated" and report.bad_seq == 5
    assert "cut off" in report.message


def test_records_appended_after_the_anchor_are_fine() -> None:
    records = _chain(4)
    anchor = _head(records)
    records.append(next_record(records[-1], "optout_changed", {"personalized": False}))
    assert verify_chain(records, anchor).ok
