"""The wait the background writers add to calls: in-process Recommend and QuotePrices, paced.

One service object as ``fairshelf serve`` builds it (exposure log and quote log on, a real
SQLite database in ``--dir``, a small catalog published as a real bundle by
``serve_catalog.py``) answers Recommend and QuotePrices (20 items) in turn at a steady rate
from one calling thread, in windows that alternate between two states of the same writers:

- *busy*: the exposure writer and the quote writer store what the calls hand them, as they
  do in the server;
- *idle*: both writers are held at the door of their store (each pass waits until the
  window ends), so the same calls run with no writer taking the interpreter.

A call is timed from the moment it was scheduled, not from when the calling thread woke up:
a thread that sleeps until its next call needs the interpreter lock to wake, and a writer
holding the lock delays that too (as it delays a server's event loop taking the next request).
Before each busy window the backlog of the idle one is written, untimed.

``--switch-intervals`` runs the busy windows once per interpreter switch interval given (the
idle ones keep the default): a wait that shrinks with the interval is a wait for the lock.
Every writer pass is timed (wall and the writer thread's CPU), and each busy window's calls
are split by whether they overlapped a pass. ``--probe`` adds the mechanism alone, without the
service: how late a thread that sleeps 1 ms at a time wakes beside a bare batch insert whose
rows are built in Python, with and without :mod:`fairshelf.interpreter_turns`.

Usage::

    python benchmarks/writer_tails_bench.py [--dir benchmarks/out/writer_tails] [--rate 500]
        [--window 4] [--rounds 3] [--switch-intervals 0.005,0.0005] [--probe]
"""

from __future__ import annotations

import one_thread_env  # noqa: F401  (sets thread counts before numpy loads)

# isort: split
import argparse
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from serve_catalog import build_catalog_bundle
from service_under_load import build_service

HERE = Path(__file__).resolve().parent

API_KEY = "sk-bench-0000000000000000000000"
KINDS = ("Recommend", "QuotePrices")


@dataclass
class WriterGate:
    """Holds the writers' passes while closed and times every pass.

    Each pass is ``(writer, start, end, writer thread CPU seconds, rows)``.
    """

    open: threading.Event = field(default_factory=threading.Event)
    passes: list[tuple[str, float, float, float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.open.set()

    def wrap(self, writer: str, store_call: Callable[..., Any]) -> Callable[..., Any]:
        """``store_call`` (one pass's write), held while closed and timed."""

        def run(rows: Any, *args: Any, **kw: Any) -> Any:
            self.open.wait()
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return store_call(rows, *args, **kw)
            finally:
                t1, c1 = time.perf_counter(), time.thread_time()
                self.passes.append((writer, t0, t1, c1 - c0, len(rows)))

        return run


@dataclass
class Window:
    """The calls of one window: kind, scheduled, started and finished times."""

    state: str
    calls: list[tuple[str, float, float, float]] = field(default_factory=list)
    t0: float = 0.0
    t1: float = 0.0


def paced_window(state: str, calls: list[Callable[[], Any]], rate: float, secs: float) -> Window:
    """Run ``calls`` in turn at ``rate`` per second for ``secs`` seconds from one thread."""
    win = Window(state)
    n = int(rate * secs)
    gap = 1.0 / rate
    win.t0 = start = time.perf_counter() + 0.01
    for i in range(n):
        sched = start + i * gap
        wait = sched - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        began = time.perf_counter()
        calls[i % len(calls)]()
        win.calls.append((KINDS[i % len(KINDS)], sched, began, time.perf_counter()))
    win.t1 = time.perf_counter()
    return win


def _stats(ms: np.ndarray) -> str:
    if ms.size == 0:
        return "- | - | - | 0"
    p50, p99 = np.percentile(ms, [50, 99])
    return f"{p50:.3f} | {p99:.3f} | {ms.max():.2f} | {ms.size}"


class Collections:
    """Times the garbage collector's runs: ``(generation, start, end)`` each."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, float, float]] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.spans.append((int(info["generation"]), self._t0, time.perf_counter()))


def render(
    windows: list[Window],
    passes: list[tuple[str, float, float, float, int]],
    note: str,
    collections: list[tuple[int, float, float]] | None = None,
) -> str:
    """The Markdown tables: latency per state and call type, the writers' passes."""
    rows = [
        note,
        "",
        "| writers | call | p50 ms | p99 ms | max ms | calls |",
        "|---|---|---|---|---|---|",
    ]
    states = list(dict.fromkeys(w.state for w in windows))
    writing = np.array([(p[1], p[2]) for p in passes]).reshape(-1, 2)
    collecting = np.array([(c[1], c[2]) for c in collections or []]).reshape(-1, 2)

    def beside(spans: np.ndarray, calls: list[tuple[str, float, float, float]]) -> np.ndarray:
        # Calls whose span (scheduled to finished) overlapped one of ``spans``.
        return np.array(
            [bool(((spans[:, 0] < e) & (spans[:, 1] > s)).any()) for _, s, _, e in calls],
            dtype=bool,
        )

    for state in states:
        mine = [c for w in windows if w.state == state for c in w.calls]
        for kind in KINDS:
            ms = np.array([(end - sched) * 1e3 for k, sched, _, end in mine if k == kind])
            rows.append(f"| {state} | {kind} | {_stats(ms)} |")
        ms = np.array([(end - sched) * 1e3 for _, sched, _, end in mine])
        by_writer, by_gc = beside(writing, mine), beside(collecting, mine)
        if by_writer.any():
            rows.append(f"| {state} | both, beside a writer pass | {_stats(ms[by_writer])} |")
        if by_gc.any():
            rows.append(f"| {state} | both, beside a garbage collection | {_stats(ms[by_gc])} |")
        rows.append(f"| {state} | both, beside neither | {_stats(ms[~by_writer & ~by_gc])} |")
    rows += [
        "",
        "| writer | passes | rows per pass (mean) | wall ms p50 / max | thread CPU ms p50 / max |",
        "|---|---|---|---|---|",
    ]
    for writer in sorted({p[0] for p in passes}):
        mine_p = [p for p in passes if p[0] == writer]
        wall = np.array([(p[2] - p[1]) * 1e3 for p in mine_p])
        cpu = np.array([p[3] * 1e3 for p in mine_p])
        rows_mean = float(np.mean([p[4] for p in mine_p]))
        rows.append(
            f"| {writer} | {len(mine_p)} | {rows_mean:,.0f} | "
            f"{np.median(wall):.2f} / {wall.max():.2f} | {np.median(cpu):.2f} / {cpu.max():.2f} |"
        )
    if collections is not None:
        rows += [
            "",
            "| writers | garbage collections (generation: count, longest ms) |",
            "|---|---|",
        ]
        for state in states:
            spans = [(w.t0, w.t1) for w in windows if w.state == state]
            mine_c = [c for c in collections if any(a <= c[1] <= b for a, b in spans)]
            per_gen = [
                f"{g}: {len(ms)}, {max(ms):.2f}"
                for g in range(3)
                if (ms := [(c[2] - c[1]) * 1e3 for c in mine_c if c[0] == g])
            ]
            rows.append(f"| {state} | {'; '.join(per_gen) or 'none'} |")
    return "\n".join(rows)


def _probe_writer(db: Path, paced: bool, stop: threading.Event) -> None:
    """Insert 2,000-row batches in a loop, rows built in Python as the writers build them."""
    import sqlite3

    from fairshelf.interpreter_turns import Turns

    con = sqlite3.connect(db, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE IF NOT EXISTS probe (n INTEGER, body TEXT)")
    while not stop.is_set():
        rows = ((i, json.dumps({"n": i, "items": [f"I{i:06d}"] * 20})) for i in range(2000))
        with con:
            con.executemany(
                "INSERT INTO probe VALUES (?, ?)", Turns().paced(rows) if paced else rows
            )
    con.close()


def convoy_probe(work: Path, secs: float, rounds: int) -> str:
    """How late a thread sleeping 1 ms at a time wakes beside a batch insert, with and without
    turns: the insert lets go of the interpreter lock at every row, and takes it back first."""
    out: dict[str, list[float]] = {"no writer": [], "insert": [], "insert in turns": []}
    db = work / "probe.db"
    for _ in range(rounds):
        for name in out:
            stop = threading.Event()
            writer = None
            if name != "no writer":
                writer = threading.Thread(target=_probe_writer, args=(db, "turns" in name, stop))
                writer.start()
                time.sleep(0.2)
            due = time.perf_counter()
            end = due + secs
            while due < end:
                due += 0.001
                if (wait := due - time.perf_counter()) > 0:
                    time.sleep(wait)
                out[name].append((time.perf_counter() - due) * 1e3)
            stop.set()
            if writer is not None:
                writer.join()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    rows = [
        "| beside | wake-up lateness p50 ms | p99 ms | max ms | wake-ups |",
        "|---|---|---|---|---|",
    ]
    rows += [f"| {name} | {_stats(np.array(ms))} |" for name, ms in out.items()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> str:
    """Run the alternating windows and print the tables; returns their text."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=HERE / "out" / "writer_tails")
    p.add_argument("--items", type=int, default=5000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=500.0, help="calls per second (both kinds)")
    p.add_argument("--window", type=float, default=4.0, help="seconds per window")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--switch-intervals",
        default="",
        help="comma-separated interpreter switch intervals (s) for the busy windows; "
        "default: the interpreter's",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="also time a thread's wake-ups beside a bare batch insert, with and without turns",
    )
    args = p.parse_args(argv)
    from serving.api_models import QuotePricesIn, RecommendIn
    from serving.service import CallContext

    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"catalog {args.items:,} items, {args.users:,} shoppers in {args.dir} ...", flush=True)
    build_catalog_bundle(args.dir / "bundles", n_items=args.items, n_users=args.users, log=False)
    db = args.dir / "tails.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    service, closing = build_service(args.dir / "bundles", db, API_KEY)
    default_interval = sys.getswitchinterval()
    intervals = [float(s) for s in args.switch_intervals.split(",") if s] or [default_interval]
    with closing:
        exposures = service.exposures
        buffered = getattr(service.quotes, "_buffer", None)
        if exposures is None or buffered is None:
            raise SystemExit("the service has no exposure log or no buffered quote log")
        gate = WriterGate()
        # The stores' own write calls are wrapped on the instances, so the writers run their
        # own code and are only held (idle windows) or timed (every pass).
        exposures.store.append = gate.wrap("exposures", exposures.store.append)  # type: ignore[method-assign]
        quote_store = buffered._inner
        quote_store.add = gate.wrap("quotes", quote_store.add)

        model = service.holder.require()
        rng = np.random.default_rng(7)
        users = [f"U{u:07d}" for u in rng.choice(args.users, 2000)]
        item_ids = [str(i) for i in model.bundle.item_ids]
        batches = [
            [item_ids[j] for j in rng.choice(len(item_ids), 20, replace=False)] for _ in range(50)
        ]
        call = CallContext(API_KEY, "bench", "inproc")
        counter = iter(range(10**9))

        def recommend() -> None:
            n = next(counter)
            service.recommend(call, RecommendIn(user_id=users[n % len(users)], k=20))

        def quote() -> None:
            n = next(counter)
            service.quote_prices(call, QuotePricesIn(item_ids=batches[n % len(batches)]))

        for _ in range(200):  # warm: fair prices are pinned once per epoch
            recommend()
            quote()

        def flush() -> None:
            exposures.flush()
            buffered.flush()

        windows: list[Window] = []
        collections = Collections()
        gc.callbacks.append(collections)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds} ...", flush=True)
            flush()
            gate.open.clear()
            windows.append(paced_window("idle", [recommend, quote], args.rate, args.window))
            gate.open.set()
            for interval in intervals:
                flush()
                sys.setswitchinterval(interval)
                state = "busy" if len(intervals) == 1 else f"busy, switch {interval * 1e3:g} ms"
                windows.append(paced_window(state, [recommend, quote], args.rate, args.window))
                sys.setswitchinterval(default_interval)
        gc.callbacks.remove(collections)
        flush()
        busy_spans = [(w.t0, w.t1) for w in windows if w.state != "idle"]
        passes = [p for p in gate.passes if any(a <= p[1] <= b for a, b in busy_spans)]
    load = os.getloadavg()[0]
    note = (
        f"{args.items:,} items, {args.users:,} shoppers; {args.rate:.0f} calls/s alternating "
        f"Recommend (k=20) and QuotePrices (20 items), {args.rounds} rounds of "
        f"{args.window:g} s windows per state; times from each call's scheduled start; "
        f"default switch interval {default_interval * 1e3:g} ms; load average at the end "
        f"{load:.2f} on {os.cpu_count()} CPUs."
    )
    table = render(windows, passes, note, collections.spans)
    if args.probe:
        print("convoy probe ...", flush=True)
        table += "\n\n" + convoy_probe(args.dir, args.window, args.rounds)
    print("\n" + table, flush=True)
    (args.dir / "writer_tails.md").write_text(table + "\n")
    return table


if __name__ == "__main__":
    main()
