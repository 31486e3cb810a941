"""Rule G5 end to end: the SQLite audit log, its export, ``fairshelf audit`` and the report.

Tampering is done the way an insider with database access would do it: drop the append-only
triggers, then edit, delete or renumber rows with plain SQL.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from typer.testing import CliRunner

from fairshelf.cli.main import app
from pricing.fairness.audit_export import verify_export, write_export
from pricing.fairness.optout_audit import audit_optout_change
from pricing.fairness.report import verify_audit_log
from serving.store.audit_store import AuditStore
from serving.store.db import Database

ROOT = Path(__file__).resolve().parents[2]
KEY = b"0123456789abcdef-test-key"


def _filled(path: Path, n: int = 8) -> tuple[Database, AuditStore]:
    db = Database(str(path))
    store = AuditStore(db)
    for i in range(n):
        if i % 3 == 2:
            audit_optout_change(
                store, shopper_id=f"user-{i}", personalized=False, source="api", pseudonym_key=KEY
            )
        else:
            store.append("g2_violation", {"item_id": f"sku-{i}", "fair_price": 10.0 + i})
    return db, store


def _sql(db: Database, *statements: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for s in statements:
            conn.exec_driver_sql(s)


def test_appends_chain_and_verify(tmp_path: Path) -> None:
    db, store = _filled(tmp_path / "a.db")
    report = verify_audit_log(store)
    assert report.ok and report.records == 8
    assert store.anchor() == report.head
    optout = [r for r in store.records() if r.kind == "optout_changed"]
    assert optout and "user-2" not in str(optout[0].payload)  # pseudonymised
    db.close()


def test_log_refuses_update_and_delete(tmp_path: Path) -> None:
    db, _ = _filled(tmp_path / "b.db")
    for statement in ("UPDATE audit_log SET kind = 'x' WHERE seq = 1", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
    db.close()


@pytest.mark.parametrize(
    ("statements", "problem", "seq"),
    [
        (
            [
                'UPDATE audit_log SET payload = \'{"fair_price":99.0,"item_id":"sku-4"}\' '
                "WHERE seq = 5"
            ],
            "edited",
            5,
        ),
        (["DELETE FROM audit_log WHERE seq = 4"], "deleted", 4),
        (
            [
                "UPDATE audit_log SET seq = -3 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 6",
                "UPDATE audit_log SET seq = 6 WHERE seq = -3",
            ],
            "reordered",
            3,
        ),
        (["DELETE FROM audit_log WHERE seq >= 7"], "truncated", 7),
    ],
    ids=["tampered", "deleted", "reordered", "truncated"],
)
def test_tampered_database_is_caught_and_located(
    tmp_path: Path, statements: list[str], problem: str, seq: int
) -> None:
    db, store = _filled(tmp_path / "t.db")
    _sql(db, *statements)
    report = verify_audit_log(store)
    assert not report.ok
    assert (report.problem, report.bad_seq) == (problem, seq), report.message
    result = CliRunner().invoke(app, ["audit", "verify", "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 1
    assert f"{problem} at seq {seq}" in result.output
    db.close()


def _export(tmp_path: Path) -> Path:
    db, store = _filled(tmp_path / "e.db")
    out = tmp_path / "export.jsonl"
    result = write_export(store.records(), store.anchor(), out)
    assert result.records == 8
    db.close()
    return out


def test_export_verifies_and_tampered_files_are_caught(tmp_path: Path) -> None:
    out = _export(tmp_path)
    assert verify_export(out).ok
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)

    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(lines).replace('"fair_price": 14.0', '"fair_price": 1.0'))
    assert (verify_export(edited).problem, verify_export(edited).bad_seq) == ("edited", 5)

    reordered = tmp_path / "reordered.jsonl"
    reordered.write_text("".join([*lines[:1], lines[2], lines[1], *lines[3:]]))
    assert verify_export(reordered).problem == "reordered"

    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("".join(lines[:5]))  # records 1-5, trailer gone
    report = verify_export(truncated)
    assert (report.problem, report.bad_seq) == ("truncated", 6)

    cut_then_trailer = tmp_path / "cut.jsonl"
    cut_then_trailer.write_text("".join(lines[:5] + lines[-1:]))  # trailer kept, tail cut
    assert verify_export(cut_then_trailer).problem == "truncated"


def test_cli_export_verify_and_report(tmp_path: Path) -> None:
    db, _ = _filled(tmp_path / "c.db")
    db.close()
    runner = CliRunner()
    out = tmp_path / "audit.jsonl"
    r = runner.invoke(app, ["audit", "export", "--db", str(tmp_path / "c.db"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 8 records" in r.output
    r = runner.invoke(app, ["audit", "verify", "--file", str(out)])
    assert r.exit_code == 0 and "OK" in r.output
    r = runner.invoke(
        app, ["audit", "report", "--db", str(tmp_path / "c.db"), "--out", str(tmp_path / "rep")]
    )
    assert r.exit_code == 0, r.output
    md = (tmp_path / "rep" / "fairness_report.md").read_text(encoding="utf-8")
    assert "Audit log chain (G5): **intact**" in md
    assert (tmp_path / "rep" / "price_dispersion.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "violations.png").stat().st_size > 1000
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code != 0


def test_documented_standard_library_verifier_agrees(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "fairness.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- verifier -->\s*```python\n(.*?)```", doc, re.S)
    assert match, "docs/fairness.md must hold the standalone verifier"
    script = tmp_path / "verify_fairshelf_audit.py"
    script.write_text(match.group(1), encoding="utf-8")
    out = _export(tmp_path)
    ok = subprocess.run(
        [sys.executable, "-I", str(script), str(out)], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines[:3] + lines[4:]))
    broken = subprocess.run(
        [sys.executable, "-I", str(script), str(bad)], capture_output=True, text=True, check=False
    )
    assert broken.returncode == 1 and "seq 4" in broken.stdout


def test_two_processes_appending_keep_one_intact_chain(tmp_path: Path) -> None:
    path = tmp_path / "mp.db"
    Database(str(path)).create_all()
    code = (
        "import sys\n"
        "from serving.store.db import Database\n"
        "from serving.store.audit_store import AuditStore\n"
        "store = AuditStore(Database(sys.argv[1]))\n"
        "for i in range(25):\n"
        "    store.append('g2_violation', {'writer': sys.argv[2], 'i': i})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), name], cwd=ROOT)
        for name in ("a", "b")
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    db = Database(str(path))
    store = AuditStore(db)
    report = verify_audit_log(store)
    assert report.ok and report.records == 50
    assert {r.payload["writer"] for r in store.records()} == {"a", "b"}
    db.close()
