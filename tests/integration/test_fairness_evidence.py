"""Rule G5 against an insider: sealed quote batches, signed checkpoints and ``audit verify``.

Each attack is made the way someone with write access to the database would make it (drop the
triggers, plain SQL, recompute hashes with the documented formula) or to a checkpoint sink
(copy, delete or forge files), and ``fairshelf audit verify --checkpoints`` must name it. The
honest run with writers in several processes is in ``test_fairness_evidence_honest.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from fairshelf.cli.main import app
from fairshelf.errors import InvalidArgument
from pricing.fairness.audit_chain import record_hash
from pricing.fairness.checkpoints import (
    Checkpoint,
    generate_key_pair,
    load_private_key,
    sign_checkpoint,
)
from pricing.fairness.guard import FairQuoteService
from pricing.fairness.programs import ProgramBook
from pricing.fairness.shopper import Shopper
from pricing.guardrail_rules import Guardrail
from serving.checkpointer import Checkpointer
from serving.logging import configure_logging
from serving.store.audit_store import AuditStore
from serving.store.checkpoint_sinks import DatabaseSink, DirectorySink, LogSink
from serving.store.db import METADATA, Database
from serving.store.guardrails_store import GuardrailStore
from serving.store.quote_store import QuoteStore
from tests.integration.fairness_fixtures import (
    ITEMS,
    MEMBER_PRICE,
    NEW_COUPON,
    HonestPolicy,
    ctx_at,
)

PG_URL = os.environ.get("FAIRSHELF_TEST_PG_URL")


@dataclass
class Shop:
    """A guard whose quote log is sealed, with a checkpointer into one or two directories."""

    db: Database
    audit: AuditStore
    quotes: QuoteStore
    service: FairQuoteService
    checkpointer: Checkpointer
    sinks: list[Path]
    public_key: Path
    url: str

    def quote(self, n: int = 3) -> None:
        ids = [s.item_id for s in ITEMS]
        for i in range(n):
            shopper = Shopper(f"u{i}", tenure_days=900.0 * (i % 2), orders=3 * i, device="ios")
            self.service.quote(ids, ctx_at(), shopper)

    def close(self) -> None:
        self.service.close()
        self.db.close()


def _keys(tmp_path: Path, name: str = "log") -> tuple[bytes, Path]:
    private_pem, public_pem = generate_key_pair()
    public = tmp_path / f"{name}.pub"
    public.write_bytes(public_pem)
    return private_pem, public


def _shop(tmp_path: Path, url: str | None = None, sinks: int = 1) -> Shop:
    from pricing.catalog import PricingCatalog
    from pricing.engine import PricingEngine
    from pricing.guardrails import GuardrailSet

    url = url or str(tmp_path / "shop.db")
    db = Database(url)
    audit = AuditStore(db)
    quotes = QuoteStore(db, audit=audit)
    engine = PricingEngine(
        PricingCatalog({s.item_id: s for s in ITEMS}), GuardrailSet(), HonestPolicy()
    )
    service = FairQuoteService(
        engine,
        quote_log=quotes,
        audit=audit,
        programs=ProgramBook([NEW_COUPON, MEMBER_PRICE]),
        buffer_quotes=False,
    )
    private_pem, public = _keys(tmp_path)
    dirs = [tmp_path / f"checkpoints-{i}" for i in range(sinks)]
    checkpointer = Checkpointer(
        audit,
        load_private_key(private_pem, "test key"),
        [DirectorySink(d) for d in dirs],
        every_records=1000,
        every_seconds=3600,
    )
    return Shop(db, audit, quotes, service, checkpointer, dirs, public, url)


def _history(shop: Shop) -> tuple[Checkpoint, Checkpoint]:
    """A guardrail change, quotes, checkpoint 1, more quotes and events, checkpoint 2, a tail."""
    guardrails = GuardrailStore(shop.db, audit=shop.audit)
    guardrails.put(
        Guardrail("global", min_ratio=0.8, max_ratio=1.25, min_margin=0.12),
        author="pricing-lead",
        reason="margin floor for Q3",
    )
    shop.quote(3)
    first = shop.checkpointer.checkpoint(force=True)
    shop.quote(2)
    shop.audit.append("g2_violation", {"item_id": "sku-1", "fair_price": 10.0})
    second = shop.checkpointer.checkpoint(force=True)
    shop.quote(1)
    assert first is not None and second is not None
    return first, second


def _verify(
    shop: Shop, *extra: str, checkpoints: list[Path | str] | None = None
) -> tuple[int, str]:
    args = ["audit", "verify", "--db", shop.url]
    for d in shop.sinks if checkpoints is None else checkpoints:
        args += ["--checkpoints", str(d)]
    if checkpoints != []:
        args += ["--public-key", str(shop.public_key)]
    result = CliRunner().invoke(app, [*args, *extra])
    return result.exit_code, result.output


def _sql(shop: Shop, *statements: str, params: dict[str, Any] | None = None) -> None:
    with shop.db.engine.begin() as conn:
        if shop.db.is_sqlite:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log"))
        for s in statements:
            conn.execute(text(s), params or {})


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@pytest.fixture(params=_backends())
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = PG_URL if request.param == "postgresql" else None
    if url is not None:
        _drop_all(url)
    s = _shop(tmp_path, url=url)
    yield s
    s.close()
    if url is not None:
        _drop_all(url)


def _drop_all(url: str) -> None:
    db = Database(url)
    METADATA.drop_all(db.engine, checkfirst=True)
    db.close()


def test_honest_log_verifies_and_says_what_was_checked(shop: Shop) -> None:
    _history(shop)
    code, out = _verify(shop)
    assert code == 0, out
    assert "OK chain, batches and checkpoints verified" in out
    assert f"{6 * len(ITEMS)} quotes in 6 sealed batches" in out
    assert "checkpoints 1..2 verified" in out
    assert "not covered by a checkpoint yet" in out  # the last batch came after checkpoint 2
    code, out = _verify(shop, checkpoints=[])
    assert code == 0
    assert "only the log's internal consistency was checked" in out


def _recompute_from(shop: Shop, seq: int) -> None:
    """Rewrite every hash from ``seq`` on with the documented formula, and the head."""
    with shop.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log ORDER BY seq")).all()
    prev = "0" * 64
    rewritten: list[dict[str, Any]] = []
    for r in rows:
        h = r.hash
        if r.seq >= seq:
            h = record_hash(r.seq, r.ts, r.kind, json.loads(r.payload), prev)
            rewritten.append({"p": prev, "h": h, "s": r.seq})
        prev = h
    _sql(shop)  # drops the triggers
    with shop.db.engine.begin() as conn:
        for params in rewritten:
            conn.execute(
                text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"), params
            )
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": rows[-1].seq, "h": prev}
        )


def test_rewrite_and_recompute_of_the_chain_is_caught_only_with_checkpoints(shop: Shop) -> None:
    _history(shop)
    with shop.db.engine.connect() as conn:
        change = conn.execute(
            text("SELECT seq, payload FROM audit_log WHERE kind = 'guardrail_changed'")
        ).one()
    assert '"new":0.12' in change.payload
    _sql(
        shop,
        "UPDATE audit_log SET payload = :p WHERE seq = :s",
        params={"p": change.payload.replace('"new":0.12', '"new":0.5'), "s": change.seq},
    )
    _recompute_from(shop, change.seq)
    code, out = _verify(shop, checkpoints=[])
    assert code == 0, out  # the recomputed chain is internally consistent ...
    assert "only the log's internal consistency was checked" in out
    code, out = _verify(shop)  # ... but no longer what was signed
    assert code == 1
    assert "first break: rewritten" in out
    assert "checkpoint 1" in out


@pytest.mark.parametrize(
    ("attack", "kind"),
    [
        ("DELETE FROM quote_log WHERE quote_id = (SELECT MIN(quote_id) FROM quote_log)",
         "quote_deleted"),
        ("UPDATE quote_log SET list_price = list_price + 5 "
         "WHERE quote_id = (SELECT MAX(quote_id) FROM quote_log WHERE batch_seq IS NOT NULL)",
         "quote_edited"),
        ("INSERT INTO quote_log SELECT 'q_forged', item_id, epoch, context_key, quoted_at, "
         "list_price, final_price, tenure, frequency, device, guard_status, blocked_price, "
         "lines, detail, batch_seq, shopper_ref FROM quote_log WHERE quote_id = "
         "(SELECT MIN(quote_id) FROM quote_log)", "quote_inserted"),
        ("INSERT INTO quote_log SELECT 'q_stray', item_id, epoch, context_key, quoted_at, "
         "list_price, final_price, tenure, frequency, device, guard_status, blocked_price, "
         "lines, detail, NULL, shopper_ref FROM quote_log WHERE quote_id = "
         "(SELECT MIN(quote_id) FROM quote_log)", "quote_inserted"),
    ],
    ids=["delete", "edit_list_price", "insert_into_batch", "insert_unsealed"],
)  # fmt: skip
def test_quote_row_tampering_is_caught(shop: Shop, attack: str, kind: str) -> None:
    _history(shop)
    _sql(shop, attack)
    code, out = _verify(shop)
    assert code == 1
    assert f"first break: {kind}" in out, out


def test_truncating_log_and_head_together_is_caught(shop: Shop) -> None:
    first, second = _history(shop)
    keep = first.seq + 1  # cut between the two checkpoints, head moved along
    with shop.db.engine.connect() as conn:
        head_hash = conn.execute(
            text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": keep}
        ).scalar()
    _sql(
        shop,
        "DELETE FROM quote_log WHERE batch_seq > :s",
        "DELETE FROM audit_log WHERE seq > :s",
        "UPDATE audit_head SET seq = :s, hash = :h",
        params={"s": keep, "h": head_hash},
    )
    code, out = _verify(shop, checkpoints=[])
    assert code == 0, out  # consistent in itself
    code, out = _verify(shop)
    assert code == 1
    assert f"first break: truncated at seq {keep + 1}" in out
    assert f"checkpoint 2 signed the log up to seq {second.seq}" in out


def test_an_old_checkpoint_replayed_as_the_latest_is_caught(shop: Shop) -> None:
    _history(shop)
    sink = shop.sinks[0]
    shutil.copy(sink / "checkpoint-00000001.json", sink / "checkpoint-00000003.json")
    code, out = _verify(shop)
    assert code == 1
    assert "first break: replayed" in out
    assert "an old checkpoint was replayed as the latest" in out


def test_a_checkpoint_signed_with_another_key_is_caught(shop: Shop, tmp_path: Path) -> None:
    _, second = _history(shop)
    other_pem, _other_public = _keys(tmp_path, "intruder")
    intruder = load_private_key(other_pem, "intruder")
    head = shop.audit.anchor()
    assert head is not None
    forged = sign_checkpoint(
        intruder,
        previous=second,
        seq=head.seq,
        head_hash=head.hash,
        time=second.time,
        tree_size=second.tree_size + 3,
    )
    DirectorySink(shop.sinks[0]).append(forged)
    code, out = _verify(shop)
    assert code == 1
    assert "first break: unknown_key" in out
    # Passed off under the real key's id, the signature itself fails.
    (shop.sinks[0] / "checkpoint-00000003.json").unlink()
    body = forged.to_json()
    body["key_id"] = second.key_id
    (shop.sinks[0] / "checkpoint-00000003.json").write_text(json.dumps(body))
    code, out = _verify(shop)
    assert code == 1
    assert "first break: bad_signature" in out


def test_a_sink_that_lost_its_last_file(tmp_path: Path) -> None:
    shop = _shop(tmp_path, sinks=2)
    try:
        _history(shop)
        a, b = shop.sinks
        (b / "checkpoint-00000002.json").unlink()
        code, out = _verify(shop, checkpoints=[b])  # alone, it can only say what it covers
        assert code == 0, out
        assert "checkpoints 1..1 verified" in out
        assert "not covered by a checkpoint yet" in out
        code, out = _verify(shop)  # beside the other sink, the loss is a finding
        assert code == 1
        assert f"checkpoints: {a}: checkpoints 1..2 verified" in out
        assert f"checkpoints: {b}: checkpoints 1..1 verified" in out
        assert f"{b} lost its last checkpoint(s) 2..2" in out
    finally:
        shop.close()


def test_checkpoints_in_a_second_database_and_key_rotation(tmp_path: Path) -> None:
    shop = _shop(tmp_path)
    try:
        sink_url = f"sqlite:///{tmp_path / 'notary.db'}"
        copy = DatabaseSink(sink_url)
        shop.checkpointer.sinks.append(copy)
        shop.quote(2)
        assert shop.checkpointer.checkpoint(force=True) is not None
        # Rotate: the next checkpoints are signed with a new key, and chain on the old ones.
        new_pem, new_public = _keys(tmp_path, "rotated")
        rotated = Checkpointer(
            shop.audit,
            load_private_key(new_pem, "rotated"),
            shop.checkpointer.sinks,
            every_records=1000,
            every_seconds=3600,
        )
        shop.quote(1)
        assert rotated.checkpoint(force=True) is not None
        code, out = _verify(shop, checkpoints=[sink_url])
        assert code == 1 and "unknown_key" in out  # the new key was not given
        code, out = _verify(
            shop, "--public-key", str(new_public), checkpoints=[shop.sinks[0], sink_url]
        )
        assert code == 0, out
        assert "checkpoints 1..2 verified" in out
        copy.close()
    finally:
        shop.close()


def test_checkpoints_copied_to_the_log_stream_are_read_back_from_a_log_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "info")  # to the captured stderr, as a server's JSON log
    shop = _shop(tmp_path)
    try:
        shop.checkpointer.sinks.append(LogSink())
        _history(shop)
        log_file = tmp_path / "server.log"
        lines = capsys.readouterr().err.splitlines()
        log_file.write_text("\n".join(lines) + "\n")
        code, out = _verify(shop, checkpoints=[shop.sinks[0], log_file])
        assert code == 0, out
        assert f"{log_file}: checkpoints 1..2 verified" in out
        kept = [line for line in lines if '"n":2' not in line.replace(" ", "")]
        log_file.write_text("\n".join(kept) + "\n")
        code, out = _verify(shop, checkpoints=[shop.sinks[0], log_file])
        assert code == 1 and f"{log_file} lost its last checkpoint(s) 2..2" in out
    finally:
        shop.close()
        with capsys.disabled():  # back to the real stderr, which outlives this test
            configure_logging("console", "info")


def test_the_server_never_signs_a_rewritten_log(shop: Shop) -> None:
    _history(shop)
    with shop.db.engine.connect() as conn:
        seq = conn.execute(
            text("SELECT MIN(seq) FROM audit_log WHERE kind = 'quote_batch'")
        ).scalar()
    _sql(shop, "UPDATE audit_log SET ts = '2020-01-01T00:00:00+00:00' WHERE seq = :s",
         params={"s": seq})  # fmt: skip
    _recompute_from(shop, seq)
    shop.quote(1)  # the server goes on appending to the rewritten chain
    assert shop.checkpointer.checkpoint(force=True) is None  # but signs none of it
    code, out = _verify(shop)
    assert code == 1 and "first break: rewritten" in out


def test_bad_verify_arguments_are_named(shop: Shop, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["audit", "verify", "--db", shop.url]
    cases = [
        (["--checkpoints", str(shop.sinks[0])], "--checkpoints needs --public-key"),
        (["--checkpoints", str(tmp_path / "nowhere"), "--public-key", str(shop.public_key)],
         "no such directory, file or database URL"),
        (["--checkpoints", str(shop.sinks[0]), "--public-key", str(shop.sinks[0].parent / "x")],
         "is not a PEM public key"),
    ]  # fmt: skip
    (shop.sinks[0].parent / "x").write_text("not a key")
    for extra, message in cases:
        result = runner.invoke(app, [*base, *extra])
        assert isinstance(result.exception, InvalidArgument), result.output
        assert message in str(result.exception)
