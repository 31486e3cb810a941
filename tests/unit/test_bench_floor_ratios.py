"""benchmarks/floor_ratios.py: the limit the transport floor sets, and rounds merged into one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from floor_ratios import (
    limit_rps,
    loaded_rows,
    merge_rounds,
    ratios,
    render_ratios,
    service_cpu,
)


def _phase(rps: float, ok: int, cpu_s: float, seconds: float, p99: float) -> dict[str, Any]:
    return {
        "rps": rps,
        "ok": ok,
        "sent": ok,
        "errors": 0,
        "server_cpu_s": cpu_s,
        "seconds": seconds,
        "p50_ms": p99 / 4,
        "p99_ms": p99,
        "steal_pct": 1.0,
        "lanes": 16,
    }


def test_limit_from_rates_adds_the_service_per_worker() -> None:
    # 2 workers, floor 4,000/s: 0.5 ms of a worker per call; + 0.5 ms of service = 1 ms.
    assert limit_rps(4000.0, 0.5, 2) == pytest.approx(2000.0)
    assert limit_rps(0.0, 0.5, 2) == 0.0


def test_ratio_is_floor_plus_service_cpu_over_fairshelf_cpu() -> None:
    served = {
        "workers": 2,
        # floor: 0.1 ms CPU per call; fairshelf: 0.5 ms per call.
        "floor_grpc_max": _phase(8000.0, 80_000, 8.0, 10.0, 2.0),
        "grpc_max": _phase(3000.0, 30_000, 15.0, 10.0, 9.0),
        "floor_http_max": _phase(20000.0, 200_000, 6.0, 10.0, 1.0),
        "http_max": _phase(5000.0, 50_000, 10.0, 10.0, 4.0),
        "floor_grpc": _phase(1000.0, 10_000, 3.0, 10.0, 2.0),
        "grpc": _phase(1000.0, 10_000, 6.0, 10.0, 5.0),
    }
    r = ratios(served, service_cpu_ms=0.15)
    assert r["grpc"]["ratio"] == pytest.approx((0.1 + 0.15) / 0.5)
    assert r["grpc"]["limit_rps"] == pytest.approx(3000.0 / 0.5)
    assert r["http"]["ratio"] == pytest.approx((0.03 + 0.15) / 0.2)
    assert r["grpc"]["rate_limit_rps"] == pytest.approx(2 / (2 / 8000.0 + 0.15e-3))
    assert r["grpc_p99"]["ratio"] == pytest.approx(2.5)
    table = render_ratios(served, {"recommend_cpu_ms": 0.15, "recommend": (0.12, 0.3)})
    assert "**0.50**" in table and "**0.90**" in table and "**2.50x** floor" in table
    assert table.count("NOT met") == 2  # gRPC throughput and p99; HTTP meets 0.85


def test_rounds_add_counts_and_weight_the_rate_by_time() -> None:
    a = _phase(1000.0, 5000, 2.0, 5.0, 3.0)
    b = _phase(2000.0, 10_000, 3.0, 5.0, 9.0)
    c = _phase(1500.0, 7500, 2.5, 5.0, 4.0)
    a["server"] = {"ok": 5000, "errors": 0, "uncounted_200": 0, "service_mean_ms": 0.2}
    b["server"] = {"ok": 10_000, "errors": 1, "uncounted_200": 0, "service_mean_ms": 0.5}
    c["server"] = {"ok": 7500, "errors": 0, "uncounted_200": 0, "service_mean_ms": None}
    m = merge_rounds([a, b, c])
    assert m["rps"] == pytest.approx(1500.0)
    assert m["ok"] == 22_500 and m["server_cpu_s"] == pytest.approx(7.5)
    assert m["p99_ms"] == 4.0  # the median round's
    assert m["server"]["errors"] == 1
    assert m["server"]["service_mean_ms"] == pytest.approx((0.2 * 5000 + 0.5 * 10_000) / 15_000)
    assert m["rounds"] == 3


def _served() -> dict[str, Any]:
    return {
        "workers": 2,
        "floor_grpc_max": _phase(8000.0, 80_000, 8.0, 10.0, 2.0),  # 0.1 ms per call
        "grpc_max": _phase(3000.0, 30_000, 15.0, 10.0, 9.0),  # 0.5 ms
        "floor_http_max": _phase(20000.0, 200_000, 6.0, 10.0, 1.0),  # 0.03 ms
        "http_max": _phase(5000.0, 50_000, 10.0, 10.0, 4.0),  # 0.2 ms
        "floor_grpc": _phase(1000.0, 10_000, 3.0, 10.0, 2.0),
        "grpc": _phase(1000.0, 10_000, 6.0, 10.0, 5.0),
    }


def test_the_limit_takes_the_quiet_service_cpu_and_prints_the_loaded_one_beside_it() -> None:
    inproc = {
        "recommend_cpu_ms": 0.10,  # thread CPU without the exposure writer: not used
        "recommend": (0.12, 0.3),
        "service_cpu_ms": {"quiet": 0.15, "http": 0.24, "grpc": 0.30},
        "service_load_rps": {"http": 5000.0, "grpc": 3000.0},
    }
    assert service_cpu(inproc) == 0.15
    assert service_cpu({"recommend_cpu_ms": 0.1}) == 0.1
    table = render_ratios(_served(), inproc)
    # The bar's ratios use the quiet figure: gRPC (0.1 + 0.15) / 0.5, HTTP (0.03 + 0.15) / 0.2.
    assert "**0.50**" in table and "**0.90**" in table
    rows = loaded_rows(_served(), inproc)
    assert len(rows) == 2
    grpc, http = rows
    assert "gRPC at 3,000/s" in grpc and "2.00x" in grpc
    assert f"| {(0.1 + 0.30) / 0.5:.2f} |" in grpc
    assert "HTTP at 5,000/s" in http and "1.60x" in http
    assert f"| {(0.03 + 0.24) / 0.2:.2f} |" in http
    assert all(row in table for row in rows)
    # Verdicts stay on the bar's ratios only.
    assert table.count("NOT met") == 2
    assert loaded_rows(_served(), {"recommend_cpu_ms": 0.1}) == []
