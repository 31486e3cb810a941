"""Tests for benchmarks/generate_bench.py (the generator benchmark hits its target size)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "generate_bench.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_reaches_the_target_and_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    (result,) = bench.main(["--events", "20000", "--items", "50", "--days", "20"])
    assert 0.8 * 20_000 <= result.events <= 1.2 * 20_000
    assert result.seconds > 0 and result.events_per_second > 0
    out = capsys.readouterr().out
    assert "| events | users | items | days | seconds | events/s |" in out
    assert f"{result.events:,}" in out
