"""Signed checkpoints of the audit log (rule G5): the anchor kept outside the database.

A checkpoint signs, with an Ed25519 key, where the hash chain stood at one moment::

    {"format": "fairshelf-checkpoint/1", "key_id", "n", "prev", "seq", "head_hash", "time",
     "tree_size"}

``n`` numbers the checkpoints 1, 2, ...; ``prev`` is the :meth:`Checkpoint.digest` of
checkpoint ``n - 1`` (64 zeros for the first), so checkpoints form a chain of their own and an
old one shown again as the latest is noticed; ``seq`` and ``head_hash`` are the audit log's head;
``tree_size`` is the number of quotes sealed in ``quote_batch`` records up to ``seq``. The bytes
signed are the canonical JSON of that object (keys sorted, separators ``,`` ``:``, UTF-8) and
``signature`` is their Ed25519 signature, base64. ``key_id`` is the first 16 hex digits of the
SHA-256 of the raw 32-byte public key, so a verifier given several keys (rotation) picks the
right one.

Consistency between two checkpoints (the log only grew): the records from ``older.seq + 1`` to
``newer.seq``, each linking to the one before, lead from ``older.head_hash`` to
``newer.head_hash`` (:func:`verify_consistency`). A hash chain is its own consistency proof;
checkpoints every N records bound its length.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fairshelf.errors import InvalidArgument
from pricing.fairness.audit_chain import GENESIS_HASH, AuditRecord

CHECKPOINT_FORMAT: Final[str] = "fairshelf-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint (see the module docstring for the fields)."""

    key_id: str
    n: int
    prev: str
    seq: int
    head_hash: str
    time: str
    tree_size: int
    signature: str = ""

    def body(self) -> dict[str, Any]:
        """The signed fields."""
        data = asdict(self)
        del data["signature"]
        return {"format": CHECKPOINT_FORMAT, **data}

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return json.dumps(
            self.body(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    def digest(self) -> str:
        """SHA-256 hex of :meth:`signed_bytes`: what the next checkpoint's ``prev`` holds."""
        return hashlib.sha256(self.signed_bytes()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The stored form: the signed fields plus ``signature``."""
        return {**self.body(), "signature": self.signature}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Inverse of :meth:`to_json`.

        Raises
        ------
        InvalidArgument
            Not a checkpoint of a known format.
        """
        if data.get("format") != CHECKPOINT_FORMAT:
            raise InvalidArgument(
                f"not a {CHECKPOINT_FORMAT} checkpoint (format {data.get('format')!r})",
                field="checkpoints",
            )
        try:
            return cls(
                key_id=str(data["key_id"]),
                n=int(data["n"]),
                prev=str(data["prev"]),
                seq=int(data["seq"]),
                head_hash=str(data["head_hash"]),
                time=str(data["time"]),
                tree_size=int(data["tree_size"]),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"malformed checkpoint: {exc}", field="checkpoints") from exc


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    private = Ed25519PrivateKey.generate()
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def load_private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS#8 PEM.

    Raises
    ------
    InvalidArgument
        Not an unencrypted Ed25519 private key; the message names ``where`` (a setting or a
        file), never the key's text.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise InvalidArgument(
            f"{where} is not an unencrypted PEM private key", field="checkpoint_key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument(f"{where} is not an Ed25519 key", field="checkpoint_key")
    return key


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id from PEM files (several: checkpoints of rotated keys).

    Raises
    ------
    InvalidArgument
        A file that is not an Ed25519 public key (named).
    """
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            key = serialization.load_pem_public_key(Path(path).read_bytes())
        except ValueError:
            raise InvalidArgument(f"{path} is not a PEM public key", field="public_key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidArgument(f"{path} is not an Ed25519 public key", field="public_key")
        keys[key_id(key)] = key
    return keys


def sign_checkpoint(
    key: Ed25519PrivateKey,
    *,
    previous: Checkpoint | None,
    seq: int,
    head_hash: str,
    time: str,
    tree_size: int,
) -> Checkpoint:
    """The checkpoint that follows ``previous`` (or the first), signed with ``key``."""
    unsigned = Checkpoint(
        key_id=key_id(key.public_key()),
        n=1 if previous is None else previous.n + 1,
        prev=GENESIS_HASH if previous is None else previous.digest(),
        seq=seq,
        head_hash=head_hash,
        time=time,
        tree_size=tree_size,
    )
    signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode("ascii")
    return Checkpoint(**{**asdict(unsigned), "signature": signature})


def signature_problem(cp: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """Why ``cp``'s signature does not hold under ``keys``, or None when it does."""
    key = keys.get(cp.key_id)
    if key is None:
        return f"checkpoint {cp.n} names key {cp.key_id}, which is none of the given keys"
    try:
        key.verify(base64.b64decode(cp.signature, validate=True), cp.signed_bytes())
    except (InvalidSignature, ValueError):
        return f"checkpoint {cp.n}: the signature does not verify under key {cp.key_id}"
    return None


def verify_consistency(
    older: Checkpoint | None, newer: Checkpoint, records: Sequence[AuditRecord]
) -> str | None:
    """Whether ``records`` prove the log only grew from ``older`` to ``newer``.

    Parameters
    ----------
    older:
        The earlier checkpoint, or None for the empty log.
    newer:
        The later checkpoint.
    records:
        The records ``older.seq + 1`` .. ``newer.seq`` (:func:`consistency_proof`).

    Returns
    -------
    str | None
        None when each record hashes right, links to the one before and the last one is
        ``newer``'s head; else what is wrong.
    """
    seq, head = (0, GENESIS_HASH) if older is None else (older.seq, older.head_hash)
    for r in records:
        if r.seq != seq + 1 or r.prev_hash != head or r.computed_hash() != r.hash:
            return f"record seq {r.seq} does not extend the log of seq {seq}"
        seq, head = r.seq, r.hash
    if (seq, head) != (newer.seq, newer.head_hash):
        return f"the records end at seq {seq}, not at the checkpoint's head seq {newer.seq}"
    return None


def consistency_proof(
    records: Iterable[AuditRecord], older: Checkpoint | None, newer: Checkpoint
) -> list[AuditRecord]:
    """The records between two checkpoints: what :func:`verify_consistency` checks."""
    low = 0 if older is None else older.seq
    return [r for r in records if low < r.seq <= newer.seq]
