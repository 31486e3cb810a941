"""serving.exposure_log and serving.store.exposures_store on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from serving.exposure_log import ExposureLog
from serving.metrics import Metrics
from serving.store.db import Database
from serving.store.exposures_store import Exposure, ExposuresStore


def _count(metrics: Metrics, what: str) -> float | None:
    """The value of ``fairshelf_exposures_<what>_total`` as /metrics reports it."""
    return metrics.registry.get_sample_value(f"fairshelf_exposures_{what}_total")


def _exposure(i: int, experiment: str = "ranker") -> Exposure:
    return Exposure(
        1_767_225_600_000_000 + i,
        f"req-{i}",
        experiment,
        f"u{i % 7}",
        "als" if i % 2 else "default",
        "b1",
        "home",
        "trained_vector",
        120 + i,
        (f"i{i}", f"i{i + 1}", f"i{i + 2}"),
    )


def _log(db: Database, metrics: Metrics, capacity: int = 50) -> ExposureLog:
    return ExposureLog(
        ExposuresStore(db),
        metrics.exposures_dropped_total,
        metrics.exposures_written_total,
        capacity=capacity,
        batch=10,
        interval=0.05,
        retry_seconds=0.05,
    )


def test_exposures_are_written_in_batches_and_read_back_in_order(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "x.db"))
    metrics = Metrics()
    log = _log(db, metrics)
    log.start()
    for i in range(25):
        log.record(_exposure(i))
    log.record(_exposure(99, experiment="other"))
    log.stop()
    store = ExposuresStore(db)
    frame = store.read("ranker")
    assert len(frame) == 25 and list(frame["request_id"][:2]) == ["req-0", "req-1"]
    assert frame["items"][3] == ["i3", "i4", "i5"]
    assert str(frame["ts"].dt.tz) == "UTC" and int(frame["latency_us"][0]) == 120
    assert store.experiments() == ["other", "ranker"]
    assert _count(metrics, "written") == 26
    db.close()


def test_an_outage_buffers_then_drops_and_counts_and_recovery_writes_the_rest(
    tmp_path: Path,
) -> None:
    db = Database(str(tmp_path / "x.db"))
    metrics = Metrics()
    log = _log(db, metrics, capacity=50)
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE exposures RENAME TO exposures_away"))
    for i in range(30):
        log.record(_exposure(i))
    assert log.flush() is False  # the store is down: the first batch stays in hand
    for i in range(30, 70):
        log.record(_exposure(i))
    assert _count(metrics, "dropped") == 10
    assert log.backlog == 60
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE exposures_away RENAME TO exposures"))
    assert log.flush() is True
    assert len(ExposuresStore(db).read("ranker")) == 60 and log.backlog == 0
    db.close()


def test_a_batch_the_database_refuses_is_dropped_and_counted_not_retried(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "x.db"))
    metrics = Metrics()
    log = _log(db, metrics)
    log.record(_exposure(1)._replace(user_id=None))  # type: ignore[arg-type]  # NOT NULL
    assert log.flush() is True and log.backlog == 0
    assert _count(metrics, "dropped") == 1
    for i in range(3):
        log.record(_exposure(i))
    assert log.flush() and len(ExposuresStore(db).read("ranker")) == 3
    db.close()


def test_the_sqlite_driver_insert_writes_the_rows_sqlalchemy_would(tmp_path: Path) -> None:
    batch = [_exposure(i) for i in range(5)] + [_exposure(7)._replace(items=())]
    stored = []
    for name, driver in (("driver.db", True), ("core.db", False)):
        db = Database(str(tmp_path / name))
        store = ExposuresStore(db)
        assert store.driver_insert is True  # SQLite's default
        store.driver_insert = driver
        assert store.append(batch) == 6 and store.append([]) == 0
        with db.engine.connect() as conn:
            stored.append(conn.execute(text("SELECT * FROM exposures ORDER BY seq")).all())
        frame = store.read("ranker")
        assert frame["items"][5] == [] and frame["items"][0] == ["i0", "i1", "i2"]
        db.close()
    assert stored[0] == stored[1] and len(stored[0]) == 6


def test_ids_json_would_mangle_are_stored_as_given_and_batches_span_chunks(
    tmp_path: Path,
) -> None:
    # SQLite unpacks the rows from JSON text: quotes, backslashes, non-ASCII and 64-bit times
    # must come back exactly, over more rows than one insert statement carries.
    odd = _exposure(0)._replace(
        user_id='u "quoted" \\ back',
        request_id="réq-☃-😀",
        ts_us=2**62 + 1,
        items=("i,1", 'i"2', "i\\3", "ï4"),
    )
    batch = [odd] + [_exposure(i) for i in range(1, 450)]
    for name, driver in (("driver.db", True), ("core.db", False)):
        db = Database(str(tmp_path / name))
        store = ExposuresStore(db)
        store.driver_insert = driver
        assert store.append(batch) == 450
        frame = store.read("ranker")
        assert len(frame) == 450
        found = frame[frame["request_id"] == odd.request_id]
        assert len(found) == 1 and found.iloc[0]["user_id"] == odd.user_id
        assert found.iloc[0]["items"] == list(odd.items)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT max(ts_us) FROM exposures")).scalar() == 2**62 + 1
        assert list(frame["request_id"][:3]) == ["req-1", "req-2", "req-3"]
        db.close()
