"""pricing.fairness.merkle: RFC 9162 tree hashing, audit paths and the quote-leaf encoding."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairshelf.interpreter_turns import Turns
from pricing.fairness.merkle import (
    QuoteLeafEncoder,
    inclusion_proof,
    leaf_hash,
    quote_leaf,
    root_from_hashes,
    verify_inclusion,
)
from pricing.fairness.quote_batches import batch_payload


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 written out recursively, as an independent reference."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64, 100])
def test_root_matches_the_recursive_definition(n: int) -> None:
    leaves = [f"leaf-{i}".encode() for i in range(n)]
    assert root_from_hashes([leaf_hash(x) for x in leaves]) == _mth(leaves)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11, 32, 37])
def test_every_leaf_proves_inclusion_and_nothing_else_does(n: int) -> None:
    hashes = [leaf_hash(f"q{i}".encode()) for i in range(n)]
    root = root_from_hashes(hashes)
    for i in range(n):
        proof = inclusion_proof(i, hashes)
        assert verify_inclusion(hashes[i], i, n, proof, root)
        # The same path does not prove another leaf, another position or a longer path.
        assert not verify_inclusion(leaf_hash(b"forged"), i, n, proof, root)
        if n > 1:
            assert not verify_inclusion(hashes[i], (i + 1) % n, n, proof, root)
        assert not verify_inclusion(hashes[i], i, n, [*proof, hashes[0]], root)


def test_a_leaf_is_not_a_node() -> None:
    # Domain separation: two leaf hashes concatenated, hashed as a leaf, is not their parent.
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert root_from_hashes([a, b]) != leaf_hash(a + b)


def test_quote_leaf_is_canonical_over_stored_types() -> None:
    row = ["q1", "sku-1", 42, '{"r":"CN"}', "2026-03-02T10:00:00+00:00", 10, 9, "new", "low",
           "ios", "ok", None, "[]", "{}"]  # fmt: skip
    stored = [*row[:5], 10.0, 9.0, *row[7:]]
    assert quote_leaf(row) == quote_leaf(stored)
    assert quote_leaf(row).startswith(b'["q1","sku-1",42,')
    assert b",10.0,9.0," in quote_leaf(row)
    assert quote_leaf([*stored[:5], 10.01, *stored[6:]]) != quote_leaf(stored)


_text = st.text(max_size=40)
_price = st.one_of(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(
    strings=st.lists(_text, min_size=11, max_size=11),
    epoch=st.integers(0, 2**40),
    prices=st.lists(_price, min_size=2, max_size=2),
    blocked=st.one_of(st.none(), _price),
)
def test_the_writers_fast_encoder_gives_the_canonical_bytes(
    strings: list[str], epoch: int, prices: list[float], blocked: float | None
) -> None:
    s = strings
    row = [s[0], s[1], epoch, s[2], s[3], prices[0], prices[1], s[4], s[5], s[6], s[7], blocked,
           s[8], s[9]]  # fmt: skip
    encoder = QuoteLeafEncoder(limit=4)
    assert encoder.encode(row) == quote_leaf(row)
    assert encoder.encode(row) == quote_leaf(row)  # from its cache too


@pytest.mark.parametrize("n", [0, 1, 2, 3, 1023, 1024, 1025, 2047, 2048, 2049, 3001])
def test_a_paced_root_is_the_same_root(n: int) -> None:
    leaves = [f"leaf-{i}".encode() for i in range(n)]
    hashes = [leaf_hash(x) for x in leaves]
    calls: list[int] = []
    root = root_from_hashes(hashes, lambda: calls.append(1))
    assert root == root_from_hashes(hashes) == _mth(leaves)
    # One pause per run of 512 pairs on each level, at least one per level.
    assert (len(calls) > 0) == (n > 1)
    if n > 1024:
        assert len(calls) > (n.bit_length() - 1)


def test_batch_payload_with_a_pause_records_the_same_root() -> None:
    hashes = [leaf_hash(f"q{i}".encode()) for i in range(1500)]
    turns = Turns(turn=0.0, pause=0.0)
    paced = batch_payload(hashes, "q0", "q1499", turns.tick)
    assert paced == batch_payload(hashes, "q0", "q1499")
    assert turns.pauses > 0
