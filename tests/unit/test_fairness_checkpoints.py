"""pricing.fairness.checkpoints: signing, key ids, the checkpoint chain and consistency."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fairshelf.errors import InvalidArgument
from pricing.fairness.audit_chain import GENESIS_HASH, AuditRecord, next_record
from pricing.fairness.checkpoints import (
    Checkpoint,
    consistency_proof,
    generate_key_pair,
    key_id,
    load_private_key,
    sign_checkpoint,
    signature_problem,
    verify_consistency,
)


def _log(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for i in range(n):
        records.append(next_record(records[-1] if records else None, "g2_violation", {"i": i}))
    return records


def _signed(
    records: list[AuditRecord], upto: int, previous: Checkpoint | None = None
) -> tuple[Ed25519PrivateKey, Checkpoint]:
    key = load_private_key(generate_key_pair()[0], "test")
    head = records[upto - 1]
    cp = sign_checkpoint(
        key, previous=previous, seq=head.seq, head_hash=head.hash, time="t", tree_size=0
    )
    return key, cp


def test_signature_key_id_and_round_trip() -> None:
    records = _log(3)
    key, cp = _signed(records, 3)
    keys = {key_id(key.public_key()): key.public_key()}
    assert cp.n == 1 and cp.prev == GENESIS_HASH and cp.key_id in keys
    assert signature_problem(cp, keys) is None
    assert Checkpoint.from_json(cp.to_json()) == cp
    tampered = Checkpoint.from_json({**cp.to_json(), "seq": 2})
    assert "does not verify" in (signature_problem(tampered, keys) or "")
    assert "none of the given keys" in (signature_problem(cp, {}) or "")


def test_checkpoints_chain_and_the_log_only_grew_between_them() -> None:
    records = _log(6)
    key, first = _signed(records, 2)
    head = records[-1]
    second = sign_checkpoint(
        key, previous=first, seq=head.seq, head_hash=head.hash, time="u", tree_size=0
    )
    assert (second.n, second.prev) == (2, first.digest())
    proof = consistency_proof(records, first, second)
    assert [r.seq for r in proof] == [3, 4, 5, 6]
    assert verify_consistency(first, second, proof) is None
    assert verify_consistency(None, first, records[:2]) is None
    # A record left out, or a history that does not start at the older head, proves nothing.
    assert verify_consistency(first, second, proof[1:]) is not None
    other = _log(6)
    assert verify_consistency(first, second, consistency_proof(other, first, second)) is not None


def test_bad_input_is_named() -> None:
    with pytest.raises(InvalidArgument, match="not an unencrypted PEM private key"):
        load_private_key(b"nope", "setting checkpoint_key")
    with pytest.raises(InvalidArgument, match="not a fairshelf-checkpoint/1"):
        Checkpoint.from_json({"format": "other"})
    with pytest.raises(InvalidArgument, match="malformed checkpoint"):
        Checkpoint.from_json({"format": "fairshelf-checkpoint/1", "n": 1})
