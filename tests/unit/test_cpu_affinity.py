"""serving.cpu_affinity: which core a worker gets, and a process pinning itself from its
environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fairshelf.errors import InvalidArgument
from serving.cpu_affinity import WORKER_CPU_ENV, pin_from_env, worker_cpu


def test_workers_take_the_allowed_cores_in_order_round_robin() -> None:
    assert [worker_cpu(slot, {3, 1, 5}) for slot in range(5)] == [1, 3, 5, 1, 3]
    assert worker_cpu(0) == min(os.sched_getaffinity(0))


def test_no_core_to_choose_from_is_an_error_naming_the_setting() -> None:
    with pytest.raises(InvalidArgument) as info:
        worker_cpu(0, set())
    assert info.value.field == "pin_workers"


def test_without_the_variable_nothing_is_pinned() -> None:
    env: dict[str, str] = {}
    assert pin_from_env(env) is None


@pytest.mark.parametrize("value", ["x", "-1", "100000"])
def test_a_core_this_process_may_not_use_is_refused(value: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        pin_from_env({WORKER_CPU_ENV: value})
    assert info.value.field == WORKER_CPU_ENV and repr(value) in str(info.value)


def test_a_process_pins_its_threads_and_the_ones_it_starts_later() -> None:
    # In a child process: pinning this test process would confine the rest of the run.
    core = max(os.sched_getaffinity(0))
    script = (
        "import os, threading\n"
        "from serving.cpu_affinity import pin_from_env, WORKER_CPU_ENV\n"
        "stop = threading.Event()\n"
        "t = threading.Thread(target=stop.wait); t.start()\n"
        "print(pin_from_env(), WORKER_CPU_ENV in os.environ)\n"
        "seen = []\n"
        "late = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))\n"
        "late.start(); late.join()\n"
        "print(sorted(os.sched_getaffinity(t.native_id)), sorted(seen[0]))\n"
        "stop.set(); t.join()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, WORKER_CPU_ENV: str(core)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [f"{core} False", f"[{core}] [{core}]"]
