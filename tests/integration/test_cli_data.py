"""Integration tests for fairshelf.cli.data_cmd: ``fairshelf data ...`` and ``fairshelf generate``.

Error cases run the real console script in a subprocess, to prove that the user sees one clear
line and exit code 2, never a traceback. Success cases call the same entry point in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fairshelf.cli.main import main
from training.data.synthetic import SyntheticStore

REPO = Path(__file__).resolve().parents[2]


def run_subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "fairshelf.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )


def run_inprocess(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", ["fairshelf", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_generate_then_summary_and_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "store"
    code, stdout, _ = run_inprocess(
        ["generate", "--out", str(out), "--users", "60", "--items", "30", "--days", "10",
         "--seed", "5"],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0
    n_events = len(pd.read_parquet(out / "events.parquet"))
    assert f"wrote {n_events:,} events" in stdout
    for name in ("items.parquet", "users.parquet", "truth_items.parquet", "truth.json"):
        assert (out / name).is_file()

    code, stdout, _ = run_inprocess(["data", "summary", str(out)], capsys, monkeypatch)
    assert code == 0
    assert "event rows" in stdout and f"{n_events:,}" in stdout
    assert "events: purchase" in stdout

    code, stdout, _ = run_inprocess(["data", "validate", str(out)], capsys, monkeypatch)
    assert code == 0 and stdout.startswith("valid: events")


def test_import_online_retail_and_summarise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "online_retail.csv"
    src.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,"
        "United Kingdom\n"
        "536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.0,17850.0,United Kingdom\n"
        "536366,22423,REGENCY CAKESTAND 3 TIER,1,2010-12-01 09:00:00,12.75,,United Kingdom\n"
        "C536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-1,2010-12-02 10:00:00,2.55,"
        "17850.0,United Kingdom\n"
    )
    out = tmp_path / "retail"
    code, stdout, _ = run_inprocess(
        ["data", "import", "online-retail", str(src), "--out", str(out)], capsys, monkeypatch
    )
    assert code == 0
    assert "wrote 2 events" in stdout and "missing customer" in stdout
    report = json.loads((out / "import_report.json").read_text())
    assert report["dropped"]["missing customer"] == 1
    assert report["dropped"]["non-product stock code"] == 1

    code, stdout, _ = run_inprocess(["data", "summary", str(out)], capsys, monkeypatch)
    assert code == 0
    assert "dropped: missing customer" in stdout
    assert "reconciliation with the source" in stdout and "397,884" in stdout


def test_import_movielens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "ml"
    src.mkdir()
    (src / "ratings.csv").write_text(
        "user_id,item_id,rating,timestamp\n1,10,5,874724710\n1,20,2,874724800\n"
    )
    (src / "items.csv").write_text(
        "item_id,title,genre_drama\n10,Heat (1995),True\n20,Clerks (1994),False\n"
    )
    code, stdout, _ = run_inprocess(
        ["data", "import", "movielens", str(src), "--out", str(tmp_path / "out")],
        capsys,
        monkeypatch,
    )
    assert code == 0 and "wrote 3 events" in stdout


def test_bad_events_file_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text(
        "user_id,item_id,event_type,timestamp,unit_price\n"
        "u1,i1,view,2026-01-01T10:00:00Z,5\n"
        "u1,i1,purchase,2026-01-01T10:01:00Z,-5\n"
    )
    result = run_subprocess("data", "validate", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    message = " ".join(result.stderr.split())
    assert "error:" in message
    assert "events.csv" in message and "row 2" in message and "'unit_price'" in message
    assert "negative" in message


def test_missing_things_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_subprocess("data", "summary", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "no such dataset directory" in result.stderr

    code, _, err = run_inprocess(
        ["generate", "--out", str(tmp_path / "g"), "--items", "3"], capsys, monkeypatch
    )
    assert code == 2 and "items must be >= 10" in err
    assert not (tmp_path / "g").exists()


def test_empty_file_and_missing_column(
    tmp_path: Path,
    tiny_store: SyntheticStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "events.parquet").write_bytes(b"")
    code, _, err = run_inprocess(["data", "validate", str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and "empty" in err and "events.parquet" in err

    tiny_store.events.drop(columns="event_type").head(5).to_parquet(
        tmp_path / "events.parquet", index=False
    )
    code, _, err = run_inprocess(["data", "validate", str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and "'event_type'" in err and "missing required column" in err


def test_names_with_brackets_print_as_they_are(
    tmp_path: Path,
    tiny_store: SyntheticStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    odd = tmp_path / "[red]shop"
    odd.mkdir()
    tiny_store.events.head(50).to_parquet(odd / "events.parquet", index=False)
    code, stdout, _ = run_inprocess(["data", "summary", str(odd)], capsys, monkeypatch)
    assert code == 0 and "[red]shop" in stdout
