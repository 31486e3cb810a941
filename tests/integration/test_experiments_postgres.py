"""The exposure log and an experiment readout on a real PostgreSQL.

``.ci/run`` starts a throwaway PostgreSQL and sets ``FAIRSHELF_TEST_PG_URL``; without it the
module is skipped and says why (the same code runs on SQLite in the other tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from serving.experiment_reports import ExperimentReports
from serving.exposure_log import ExposureLog
from serving.metrics import Metrics
from serving.store.db import METADATA, Database
from serving.store.events_store import Event, EventsStore
from serving.store.exposures_store import Exposure, ExposuresStore, to_us

PG_URL = os.environ.get("FAIRSHELF_TEST_PG_URL")
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="FAIRSHELF_TEST_PG_URL is not set (.ci/run starts a PostgreSQL)"
)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _count(metrics: Metrics, what: str) -> float | None:
    """The value of ``fairshelf_exposures_<what>_total`` as /metrics reports it."""
    return metrics.registry.get_sample_value(f"fairshelf_exposures_{what}_total")


@pytest.fixture
def pg() -> Iterator[Database]:
    assert PG_URL is not None
    db = Database(PG_URL)
    METADATA.drop_all(db.engine, checkfirst=True)
    yield db
    METADATA.drop_all(db.engine, checkfirst=True)
    db.close()


def test_exposures_written_by_the_log_are_read_out(pg: Database) -> None:
    metrics = Metrics()
    log = ExposureLog(
        ExposuresStore(pg), metrics.exposures_dropped_total, metrics.exposures_written_total
    )
    events = EventsStore(pg)
    batch = []
    for n in range(60):
        user, at = f"u{n}", T0 + timedelta(minutes=n)
        variant = "als" if n % 2 else "default"
        log.record(Exposure(to_us(at), f"r{n}", "ranker", user, variant, "b1", "home",
                            "trained_vector", 800, ("i1", "i2")))  # fmt: skip
        batch.append(Event(f"c{n}", user, "i1", "click", at + timedelta(seconds=5), 1, 0.0))
        if n % 3 == 0:
            batch.append(Event(f"p{n}", user, "i2", "purchase", at + timedelta(seconds=9), 1, 9.5))
    events.append(batch)
    assert log.flush() and _count(metrics, "written") == 60
    frame = ExposuresStore(pg).read("ranker", since=T0 + timedelta(minutes=10))
    assert len(frame) == 50 and frame["items"][0] == ["i1", "i2"]
    readout = ExperimentReports(pg, {"ranker": {"default": 0.5, "als": 0.5}}).readout("ranker")
    assert {v.variant: v.units for v in readout.variants} == {"default": 30, "als": 30}
    ctr = next(m for m in readout.metrics if m.metric == "rec_ctr")
    assert ctr.control_value == pytest.approx(0.5)
