"""Tests of serving.store.price_history_store: the batch write and the restart mirror."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from serving.store.db import Database
from serving.store.price_history_store import PriceHistoryStore

T = datetime(2026, 2, 1, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize("n", [1, 15, 16, 17, 40])
def test_record_many_writes_every_row_once_and_mirrors_it(tmp_path: Path, n: int) -> None:
    # Rows go in blocks of 16 plus a remainder: every size must land whole, and a repeated
    # (item, epoch, price) is ignored like the single-row write ignores it.
    db = Database(f"sqlite:///{tmp_path / 'h.db'}")
    store = PriceHistoryStore(db, now=T)
    entries = [(f"I{i:03d}", T, 10.0 + i) for i in range(n)]
    store.record_many(entries)
    store.record_many([*entries[:3], ("I000", T + H, 9.5)])
    assert store.count() == n + 1
    assert store.last("I000", T + H) == 9.5
    assert [store.last(f"I{i:03d}", T) for i in range(n)] == [10.0 + i for i in range(n)]
    reopened = PriceHistoryStore(db, now=T + 2 * H)
    assert [reopened.last(f"I{i:03d}", T) for i in range(n)] == [10.0 + i for i in range(n)]
    assert reopened.last_and_in_force(
        "I000", (T + H - 24 * H).timestamp(), (T + H).timestamp(), (T + H).timestamp()
    ) == (9.5, [10.0, 9.5])
    db.close()


def test_record_many_is_all_or_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'h.db'}")
    store = PriceHistoryStore(db, now=T)
    bad = [(f"I{i:03d}", T, 10.0) for i in range(20)] + [("I999", T, None)]
    with pytest.raises(Exception):  # noqa: B017 - the driver's own integrity error
        store.record_many(bad)  # type: ignore[arg-type]
    assert store.count() == 0
    assert store.last("I000", T) is None
    db.close()
