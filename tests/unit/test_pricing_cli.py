"""Tests of fairshelf.cli.pricing_cmd: guardrails set/show/rollback, simulate and the report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fairshelf.cli.main import app
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from training.data.synthetic import SyntheticStore

runner = CliRunner()


def test_guardrails_set_show_rollback(tmp_path: Path) -> None:
    db = str(tmp_path / "g.db")
    r = runner.invoke(
        app,
        [
            "guardrails",
            "set",
            "--db",
            db,
            "--by",
            "ana",
            "--reason",
            "init",
            "--floor",
            "2",
            "--max-change-pct",
            "0.1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["version"] == 1
    r = runner.invoke(
        app,
        [
            "guardrails",
            "set",
            "--db",
            db,
            "--by",
            "bo",
            "--reason",
            "home cap",
            "--scope",
            "category:home",
            "--ceiling",
            "50",
            "--price-ending",
            "0.99",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["guardrails", "show", "--db", db, "--item", "X", "--category", "home/a"]
    )
    eff = json.loads(r.output)
    assert (eff["floor"], eff["ceiling"], eff["version"]) == (2.0, 50.0, 2)
    r = runner.invoke(
        app,
        ["guardrails", "rollback", "--db", db, "--by", "ana", "--reason", "undo", "--version", "1"],
    )
    assert json.loads(r.output)["version"] == 3
    r = runner.invoke(app, ["guardrails", "show", "--db", db])
    assert json.loads(r.output)["rules"] == [
        {
            "scope": "global",
            "key": "",
            "floor": 2.0,
            "ceiling": None,
            "min_ratio": None,
            "max_ratio": None,
            "min_margin": None,
            "max_change_pct": 0.1,
            "price_ending": None,
            "objective": None,
        }
    ]
    r = runner.invoke(app, ["guardrails", "history", "--db", db])
    assert [c["author"] for c in json.loads(r.output)] == ["ana", "bo", "ana"]
    # Changes made from the command line are in the fairness audit log, like the API's (G5).
    chain = [r for r in AuditStore(Database(db)).records() if r.kind == "guardrail_changed"]
    assert [(r.payload["actor"], r.payload["version"]) for r in chain] == [
        ("ana", 1),
        ("bo", 2),
        ("ana", 3),
    ]
    r = runner.invoke(app, ["audit", "verify", "--db", db])
    assert r.exit_code == 0, r.output


def test_invalid_guardrail_is_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "g.db")
    r = runner.invoke(
        app,
        ["guardrails", "set", "--db", db, "--by", "a", "--reason", "r", "--min-margin", "-0.2"],
    )
    assert r.exit_code != 0
    assert isinstance(r.exception, Exception) and "min_margin" in str(r.exception)


def test_simulate_and_report_on_the_tiny_store(tiny_store: SyntheticStore, tmp_path: Path) -> None:
    root = str(tiny_store.paths.root)
    r = runner.invoke(app, ["simulate", "--store", root, "--weeks", "1", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "audit): 0 over 1,680 quotes" in " ".join(r.output.split())
    r = runner.invoke(
        app,
        ["simulate", "--store", root, "--weeks", "2", "--switchback", "static,elasticity_optimal"],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    assert "elasticity_optimal" in r.output and "switchback by day" in r.output
    out = tmp_path / "rep"
    r = runner.invoke(
        app,
        [
            "pricing",
            "report",
            "--events",
            f"{root}/events.parquet",
            "--items",
            f"{root}/items.parquet",
            "--out",
            str(out),
            "--period",
            "D",
        ],
    )
    assert r.exit_code == 0, r.output
    text = (out / "pricing_report.md").read_text()
    assert "| category | elasticity | 95 % interval |" in text
    assert (out / "category_elasticity.png").stat().st_size > 1000
