"""CPU the exposure log adds to a Recommend call, with and without it in the same run.

Serves the demo's bundle (a generated store of 2,000 shoppers and 400 items, trained once
into ``--dir``) through the one service object, in process and without transports, so the
only difference between the two columns is the exposure log. Calls are timed with
``time.thread_time`` (CPU of the calling thread) in interleaved rounds, exposure log on and
off; the table gives the median over rounds of the mean CPU per call. Because the added cost
is a few microseconds next to a call of several hundred, the exposure step alone
(``ExposureLog.record_answer`` on a real answer of 20 items) is also timed over many calls,
and so is the writer thread's cost per exposure (off the request path).

Usage::

    python benchmarks/exposure_bench.py [--dir benchmarks/out/exposure] [--calls 500]
"""

from __future__ import annotations

import one_thread_env  # noqa: F401  (sets thread counts before numpy loads)

# isort: split
import argparse
import time
from pathlib import Path

import numpy as np

from fairshelf.demo import prepare
from recsys.types import RecommendRequest
from serving.api_models import RecommendIn
from serving.app import FairshelfServer
from serving.service import CallContext
from serving.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _cpu_per_call(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    c0 = time.thread_time()
    for i in range(n):
        fn(i)
    return (time.thread_time() - c0) / n


def main(argv: list[str] | None = None) -> int:
    """Time Recommend with and without the exposure log; print a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "benchmarks" / "out" / "exposure")
    ap.add_argument("--calls", type=int, default=500, help="calls per round and column")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--step-calls", type=int, default=200_000)
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    bundles = prepare(args.dir)
    settings = load_settings(
        None,
        bundles_dir=bundles,
        db_url=f"sqlite:///{args.dir / 'bench.db'}",
        http_port=0,
        grpc_port=0,
        auth_enabled=False,
        pricing_enabled=False,
        log_level="warning",
        exposure_buffer=10_000_000,
    )
    server = FairshelfServer(settings)
    try:
        assert server.watcher is not None and server.exposures is not None
        server.watcher.check_once()
        service, log = server.service, server.exposures
        users = [str(u) for u in server.holder.require().bundle.user_ids[:1000]]
        bodies = [RecommendIn(user_id=users[i % len(users)], k=20) for i in range(args.calls)]

        def call(i: int) -> None:
            service.recommend(CallContext(None, f"r{i}", "bench"), bodies[i])

        for i in range(min(200, args.calls)):  # warm up both paths
            call(i)
        on, off = [], []
        for r in range(args.rounds):
            for enabled in (True, False) if r % 2 else (False, True):
                service.exposures = log if enabled else None
                (on if enabled else off).append(_cpu_per_call(call, args.calls))
            log.flush()
        service.exposures = log

        model = server.holder.require()
        request = RecommendRequest(user_id=users[0], k=20)
        result = model.recommender.recommend(request, ())
        started = time.perf_counter()
        log.capacity = args.step_calls + 1
        step = _cpu_per_call(
            lambda i: log.record_answer("req", "retriever", request, result, started),
            args.step_calls,
        )
        c0 = time.thread_time()
        backlog = log.backlog
        log.flush()
        writer = (time.thread_time() - c0) / max(backlog, 1)
    finally:
        server.stop()
    on_us, off_us = float(np.median(on)) * 1e6, float(np.median(off)) * 1e6
    print(f"Recommend CPU per call, k = 20, {args.rounds} interleaved rounds of {args.calls} calls")
    print()
    print("| measure | CPU per call |")
    print("|---|---|")
    print(f"| Recommend, exposure log off | {off_us:.1f} us |")
    print(f"| Recommend, exposure log on | {on_us:.1f} us |")
    print(
        f"| difference (on - off, noisy) | {on_us - off_us:+.1f} us ({on_us / off_us - 1:+.1%}) |"
    )
    print(f"| exposure step alone, {args.step_calls} calls | {step * 1e6:.2f} us |")
    print(f"| writer thread, per exposure (off the request path) | {writer * 1e6:.2f} us |")
    print()
    print(f"target: <= 20 us added per call; {len(users)} shoppers, {len(result.items)} items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
