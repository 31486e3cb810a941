"""Rule G5 under honest load: writers in several processes, a log from before sealing.

Three processes append sealed quote batches, other audit events and checkpoints to one
database and one checkpoint directory while ``fairshelf audit verify`` runs, on SQLite and
(when ``FAIRSHELF_TEST_PG_URL`` is set) PostgreSQL: no finding, during or after. A quote log
written before sealing is sealed once at upgrade, and a row that arrives unsealed after that
is still reported.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from fairshelf.cli.main import app
from pricing.fairness.checkpoints import generate_key_pair, load_private_key
from serving.checkpointer import Checkpointer
from serving.store.audit_store import AuditStore
from serving.store.checkpoint_sinks import DirectorySink
from serving.store.db import METADATA, Database
from serving.store.quote_store import QuoteStore

PG_URL = os.environ.get("FAIRSHELF_TEST_PG_URL")


def _drop_all(url: str) -> None:
    db = Database(url)
    METADATA.drop_all(db.engine, checkfirst=True)
    db.close()


def test_a_quote_log_from_before_sealing_is_sealed_once_at_upgrade(tmp_path: Path) -> None:
    url = str(tmp_path / "old.db")
    db = Database(url)
    plain = QuoteStore(db)  # a log written before sealing: rows in no batch
    plain.add(_quotes_for(1, 1))
    with db.engine.begin() as conn:  # and the column itself missing, as in such a file
        conn.execute(text("ALTER TABLE quote_log DROP COLUMN batch_seq"))
    audit = AuditStore(db)
    upgraded = QuoteStore(db, audit=audit)
    assert upgraded.seal_unbatched() == len(_quotes_for(1, 1))
    assert upgraded.seal_unbatched() == 0  # once only
    upgraded.add(_quotes_for(2, 2))
    [late, sealed] = [r for r in audit.records() if r.kind == "quote_batch"]
    assert late.payload["sealed_late"] is True and "sealed_late" not in sealed.payload
    args = ["audit", "verify", "--db", url]
    assert CliRunner().invoke(app, args).exit_code == 0
    QuoteStore(db).add(_quotes_for(3, 3))  # a writer that does not seal, after the upgrade
    assert upgraded.seal_unbatched() == 0  # is not sealed after the fact ...
    result = CliRunner().invoke(app, args)  # ... but reported
    assert result.exit_code == 1 and "first break: quote_inserted" in result.output
    db.close()


def _writer(url: str, sink: str, key_pem: bytes, worker: int, rounds: int) -> None:
    """One serving process: sealed quote batches, other audit events, frequent checkpoints."""
    from tests.integration.test_fairness_evidence_honest import _quotes_for

    db = Database(url)
    audit = AuditStore(db)
    quotes = QuoteStore(db, audit=audit)
    checkpointer = Checkpointer(
        audit,
        load_private_key(key_pem, "test key"),
        [DirectorySink(Path(sink))],
        every_records=3,
        every_seconds=0.05,
    )
    for r in range(rounds):
        quotes.add(_quotes_for(worker, r))
        if r % 3 == 0:
            audit.append("g2_violation", {"item_id": f"sku-{worker}", "round": r})
        checkpointer.checkpoint()
    checkpointer.checkpoint(force=True)
    db.close()


def _quotes_for(worker: int, rnd: int) -> list[Any]:
    from pricing.fairness.quotes import Quote
    from pricing.fairness.shopper import ShopperGroup

    return [
        Quote(
            quote_id=f"q_{worker:02d}_{rnd:04d}_{i:02d}",
            item_id=f"sku-{i}",
            epoch=100 + rnd,
            context_key='{"region":"CN"}',
            quoted_at="2026-03-02T10:00:00.000000+00:00",
            list_price=10.0 + i * 0.37,
            final_price=9.0 + i * 0.37,
            base_price=10.0,
            adjustment=0.0,
            reason_codes=("BASE",),
            policy_name="honest",
            policy_version="1",
            inputs=("base_price",),
            guardrail_scope="global",
            guardrail_version="1",
            discount_lines=(),
            group=ShopperGroup("new", "low", "ios"),
            blocked_price=None if i % 3 else 11.5,
        )
        for i in range(1 + (worker + rnd) % 7)
    ]


def _honest_concurrent_run(url: str, tmp_path: Path) -> None:
    private_pem, public_pem = generate_key_pair()
    public = tmp_path / "log.pub"
    public.write_bytes(public_pem)
    sink = tmp_path / "checkpoints"
    db = Database(url)
    QuoteStore(db, audit=AuditStore(db))  # schema made once, before the writers race
    db.close()
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(url, str(sink), private_pem, w, 15)) for w in range(3)
    ]
    for p in procs:
        p.start()
    args = ["audit", "verify", "--db", url, "--checkpoints", str(sink), "--public-key", str(public)]
    # Verified while the writers go on, then once they are done: never a finding.
    while any(p.is_alive() for p in procs):
        if sink.exists():
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.output
        time.sleep(0.2)
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "sealed batches" in result.output and "checkpoints 1.." in result.output


def test_honest_concurrent_writers_from_several_processes_give_no_finding(tmp_path: Path) -> None:
    _honest_concurrent_run(str(tmp_path / "busy.db"), tmp_path)


@pytest.mark.skipif(PG_URL is None, reason="FAIRSHELF_TEST_PG_URL not set")
def test_honest_concurrent_writers_on_postgres_give_no_finding(tmp_path: Path) -> None:
    assert PG_URL is not None
    _drop_all(PG_URL)
    try:
        _honest_concurrent_run(PG_URL, tmp_path)
    finally:
        _drop_all(PG_URL)
