"""benchmarks/service_under_load.py: the in-process service as the server builds it, its CPU
per call with the exposure writer's share, and the quiet/loaded rounds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from serving_support import tiny_bundles
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from service_under_load import build_service, cpu_per_call, load_command, quiet_and_loaded

KEY = "sk-bench-test-00000000000000000000"


def test_the_service_logs_every_exposure_of_a_window_before_its_cpu_is_read(
    tmp_path: Path,
) -> None:
    service, closing = build_service(tiny_bundles(tmp_path / "bundles"), tmp_path / "db", KEY)
    with closing:
        assert service.exposures is not None  # the server's default: exposure logging on
        users = [str(u) for u in service.holder.require().bundle.user_ids[:50]]
        calls = service.metrics.registry.get_sample_value
        before = calls("fairshelf_requests_total", _labels()) or 0.0
        cpu_ms = cpu_per_call(service, KEY, users, 0.3)
        served = (calls("fairshelf_requests_total", _labels()) or 0.0) - before
        assert served > 0 and 0.0 < cpu_ms < 1000.0
        # Nothing is left in the buffer: the writer's work for these calls is in the figure.
        assert service.exposures.backlog == 0
        with service.events.db.engine.connect() as conn:
            stored = conn.execute(text("SELECT COUNT(*) FROM exposures")).scalar_one()
        assert stored == served


def _labels() -> dict[str, str]:
    return {"operation": "Recommend", "transport": "inproc", "code": "OK"}


def test_rounds_alternate_quiet_and_each_load_and_average_per_condition() -> None:
    seen: list[int] = []

    def measure() -> float:
        seen.append(len(seen) + 1)
        return float(seen[-1])

    sleeper = [sys.executable, "-c", "import time; time.sleep(0.3)"]
    out = quiet_and_loaded(measure, {"http": sleeper, "grpc": sleeper}, rounds=2, settle=0.05)
    # Order: quiet, http, grpc, quiet, http, grpc -> values 1..6.
    assert out == {"quiet": 2.5, "http": 3.5, "grpc": 4.5}


def test_a_failed_load_fails_the_measurement() -> None:
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(RuntimeError, match="load http failed"):
        quiet_and_loaded(lambda: 1.0, {"http": failing}, rounds=1, settle=0.05)


def test_load_command_is_an_open_loop_at_the_rate_of_the_chosen_client(tmp_path: Path) -> None:
    cmd = load_command("h2load", "grpc", "127.0.0.1:1", tmp_path / "u.txt", KEY, 1717.6, 8.0)
    assert cmd[1].endswith("h2load_driver.py")
    assert cmd[cmd.index("--rate") + 1] == "1718" and "--concurrency" not in cmd
    assert cmd[cmd.index("--duration") + 1] == "8.0"
    assert load_command("python", "http", "x", tmp_path, KEY, 4, 1.0)[1].endswith("loadgen.py")
