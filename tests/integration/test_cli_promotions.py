"""``fairshelf promotions list|publish|end`` (fairshelf/cli/promotions_cmd.py): changes made
from the command line are versioned and audited like those over the API, and a refused change
is one clear line and exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pricing.fairness.report import verify_audit_log
from serving.store.audit_store import AuditStore
from serving.store.db import Database

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fairshelf.cli.main", "promotions", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


def test_publish_list_end_and_refusals(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    ends = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    common = ["--db", db, "--by", "ana"]
    publish = [*common, "--reason", "spring campaign", "--name", "spring-sale"]
    publish += ["--title", "Spring sale", "--description", "Store-wide offer", "--ends-at", ends]
    done = _cli("publish", *publish)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["promotion"]["running"] is True

    again = _cli("publish", *publish)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "'spring-sale' was already published" in " ".join(again.stderr.split())

    listed = json.loads(_cli("list", "--db", db).stdout)
    assert listed["running"] == ["spring-sale"] and listed["version"] == 1

    ended = _cli("end", *common, "--reason", "sold out", "--name", "spring-sale")
    assert ended.returncode == 0, ended.stderr
    assert json.loads(ended.stdout)["action"] == "end"
    missing = _cli("end", *common, "--reason", "x", "--name", "nothing")
    assert missing.returncode == 2 and "no promotion 'nothing'" in missing.stderr

    database = Database(db)
    audit = AuditStore(database)
    assert [r.payload["action"] for r in audit.records()] == ["publish", "end"]
    assert verify_audit_log(audit).ok
    database.close()
