"""serving.store.quote_store on a quote log made before the shopper pseudonym column: the
column is added, old rows read back with no pseudonym, new rows keep theirs."""

from __future__ import annotations

from pathlib import Path

from fairness_fixtures import ITEM_IDS, HonestPolicy, ctx_at, make_shop
from sqlalchemy import inspect

from pricing.fairness.shopper import Shopper
from serving.store.db import Database
from serving.store.quote_store import QuoteStore


def test_an_old_quote_log_gains_the_pseudonym_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shop = make_shop(path, HonestPolicy())
    shop.service.quote(ITEM_IDS[:2], ctx_at(), Shopper("u1", tenure_days=3))
    shop.close()
    db = Database(str(path))
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE quote_log DROP COLUMN shopper_ref")
    assert "shopper_ref" not in {c["name"] for c in inspect(db.engine).get_columns("quote_log")}
    store = QuoteStore(db)
    assert "shopper_ref" in {c["name"] for c in inspect(db.engine).get_columns("quote_log")}
    assert [q.shopper_ref for q in store.iter_quotes()] == ["", ""]
    db.close()
    shop = make_shop(path, HonestPolicy())
    shop.service.quote(ITEM_IDS[:1], ctx_at(), Shopper("u1", tenure_days=3))
    shop.service.quote(ITEM_IDS[:1], ctx_at(), None)
    refs = [q.shopper_ref for q in shop.quotes.iter_quotes()]
    assert refs[:2] == ["", ""] and len(refs[2]) == 16 and refs[3] == ""
    shop.close()
