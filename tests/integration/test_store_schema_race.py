"""Several processes opening one fresh database at once (``serve --workers``, replicas starting
together) all get the schema, none fails on a table another one created a moment before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

OPEN_EVERY_STORE = """
import sys, time
from serving.store.db import Database
from serving.store.audit_store import AuditStore
from serving.store.events_store import EventsStore
from serving.store.guardrails_store import GuardrailStore
from serving.store.optouts_store import OptOutsStore
from serving.store.price_history_store import PriceHistoryStore
from serving.store.quote_store import QuoteStore
start = float(sys.argv[2])
while time.time() < start:  # line the processes up on one instant
    time.sleep(0.001)
db = Database(sys.argv[1])
audit = AuditStore(db)
for store in (EventsStore, OptOutsStore, PriceHistoryStore, QuoteStore):
    store(db)
GuardrailStore(db, audit=audit)
db.close()
"""


def test_processes_opening_a_fresh_database_together_all_get_the_schema(tmp_path: Path) -> None:
    import time

    # Before the schema lock, 8 processes lined up like this failed 1-2 of 8 every round
    # ("table audit_log already exists").
    for round_no in range(2):
        url = f"sqlite:///{tmp_path / f'fresh{round_no}.db'}"
        start = time.time() + 3.0  # after every interpreter has imported the stores
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_EVERY_STORE, url, str(start)],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        failures = []
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                failures.append(err[-1500:])
        assert not failures, failures[0]
