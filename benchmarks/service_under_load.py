"""The service's CPU per Recommend in process: alone, and while the transport floor is loaded.

The ratio table's limit adds the floor's CPU per call to the service's, and the service's is
measured in process. Measured on a quiet host, it is not what the same call costs when the
cores also run the network stack, the load client and the other worker: their code and data
evict the service's from the caches between calls. This module measures that directly, with
no fairshelf server involved: the same in-process service object, timed in windows that
alternate between a quiet host and one where the floor (``floor_server.py``) serves as many
calls of calls per second as fairshelf sustained in its closed-loop phase, over HTTP and
over gRPC.

The service is built as ``fairshelf serve`` builds it, exposure log included (a Recommend
queues one exposure and a writer thread stores them in batches), and its CPU is the process's
(every thread of it: the writer's share counts), over the calls of a window and the flush that
writes their exposures.

Usage: :func:`build_service` once, then :func:`cpu_per_call` for each window, or
:func:`quiet_and_loaded` for the alternating rounds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def build_service(bundles: Path, db_path: Path, api_key: str) -> tuple[Any, ExitStack]:
    """The service object over ``bundles`` with a fresh SQLite database, as the server has it.

    Returns
    -------
    tuple
        The :class:`~serving.service.FairshelfService` and an :class:`ExitStack` that stops
        its exposure writer and closes its pricing side and database.
    """
    from serving.exposure_log import ExposureLog
    from serving.logging import configure_logging
    from serving.metrics import Metrics
    from serving.pricing_wiring import build_pricing
    from serving.reload import ModelHolder, load_and_check, resolve_current, settle_heap
    from serving.service import FairshelfService
    from serving.settings import load_settings
    from serving.store.db import Database
    from serving.store.events_store import EventsStore
    from serving.store.exposures_store import ExposuresStore
    from serving.store.optouts_store import OptOutsStore

    settings = load_settings(
        None,
        bundles_dir=bundles,
        db_url=f"sqlite:///{db_path}",
        api_keys={api_key: "admin"},
        log_level="warning",
    )
    configure_logging(settings.log_format, settings.log_level)
    stack = ExitStack()
    db = Database(settings.db_url)
    stack.callback(db.close)
    holder = ModelHolder()
    target = resolve_current(bundles)
    if target is None:
        raise RuntimeError(f"no bundle under {bundles}")
    holder.swap(load_and_check(target, settings.recsys))
    pricing = build_pricing(settings, db)
    if pricing is not None:
        pricing.on_model(holder.require())
        stack.callback(pricing.close)
    metrics = Metrics()
    exposures = None
    if settings.exposure_logging:
        exposures = ExposureLog(
            ExposuresStore(db),
            metrics.exposures_dropped_total,
            metrics.exposures_written_total,
            capacity=settings.exposure_buffer,
            batch=settings.exposure_batch,
        )
        exposures.start()
        stack.callback(exposures.stop)
    service = FairshelfService(
        settings,
        holder,
        EventsStore(db),
        OptOutsStore(db),
        metrics,
        quotes=pricing.quotes if pricing else None,
        exposures=exposures,
    )
    # As the server does after a swap: without it, full collections walking the bundle would
    # be counted as request CPU the server never spends.
    settle_heap()
    return service, stack


def cpu_per_call(service: Any, api_key: str, users: Sequence[str], window: float) -> float:
    """Mean CPU (ms, all threads of this process) per Recommend over ``window`` seconds.

    The exposures the calls queued are written before the clock stops, so the writer's CPU
    is in the figure.
    """
    from serving.api_models import RecommendIn
    from serving.service import CallContext

    call = CallContext(api_key, "bench", "inproc")
    exposures = service.exposures
    if exposures is not None:
        exposures.flush()
    n = 0
    cpu0 = time.process_time()
    deadline = time.perf_counter() + window
    while time.perf_counter() < deadline:
        service.recommend(call, RecommendIn(user_id=users[n % len(users)], k=20))
        n += 1
    if exposures is not None:
        exposures.flush()
    return 1000.0 * (time.process_time() - cpu0) / max(1, n)


def load_command(
    client: str, kind: str, addr: str, users_file: Path, api_key: str, rate: float, secs: float
) -> list[str]:
    """The command of one open-loop load phase at ``rate`` calls/s (the benchmark's client).

    The rate is the one fairshelf sustained in its closed loop, so that the host carries the
    traffic it carried while fairshelf served: the floor's own closed loop runs up to ten
    times as many calls per second, and a host that busy would overstate the slowdown.
    """
    script = "h2load_driver.py" if client == "h2load" else "loadgen.py"
    return [
        sys.executable,
        str(HERE / script),
        "--target",
        kind,
        "--addr",
        addr,
        "--users",
        str(users_file),
        "--api-key",
        api_key,
        "--rate",
        f"{rate:.0f}",
        "--duration",
        str(secs),
    ]


def quiet_and_loaded(
    measure: Callable[[], float],
    loads: dict[str, list[str]],
    rounds: int = 2,
    *,
    settle: float = 2.5,
    run: Callable[[list[str]], subprocess.Popen[bytes]] | None = None,
) -> dict[str, float]:
    """``measure()`` on a quiet host and under each load, in alternating rounds.

    Parameters
    ----------
    measure:
        One timed window; returns CPU per call (ms).
    loads:
        Name -> command of a load lasting longer than ``settle`` plus one window.
    rounds:
        Rounds of (quiet, each load in turn).
    settle:
        Seconds between starting a load and timing (its lanes start up to 2 s apart).
    run:
        Starts a command (default: :class:`subprocess.Popen`, output discarded).

    Returns
    -------
    dict
        ``"quiet"`` and each load's name -> mean of its rounds' CPU per call (ms).
    """
    start = run or (
        lambda cmd: subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=HERE.parent
        )
    )
    seen: dict[str, list[float]] = {"quiet": [], **{name: [] for name in loads}}
    for _ in range(rounds):
        seen["quiet"].append(measure())
        for name, cmd in loads.items():
            proc = start(cmd)
            try:
                time.sleep(settle)
                seen[name].append(measure())
            finally:
                if proc.wait(timeout=120) != 0:
                    raise RuntimeError(f"load {name} failed: {cmd}")
    return {name: sum(v) / len(v) for name, v in seen.items()}


def measure(
    bundles: Path,
    db_path: Path,
    api_key: str,
    users: Sequence[str],
    loads: dict[str, list[str]],
    *,
    window: float = 3.0,
    rounds: int = 2,
) -> dict[str, float]:
    """Build the service, then its CPU per call quiet and under each load (ms)."""
    service, closing = build_service(bundles, db_path, api_key)
    with closing:
        cpu_per_call(service, api_key, users, 0.5)  # warm, as the other in-process steps
        return quiet_and_loaded(
            lambda: cpu_per_call(service, api_key, users, window), loads, rounds
        )
