"""Serving benchmark: in-process latency, gRPC and HTTP under load, a naive baseline, memory.

Steps (each server and each load generator is its own process on 127.0.0.1):

1. build (or reuse) the benchmark catalog: 100,000 items, 200,000 shoppers, ALS fitted with
   implicit, published as a bundle (``serve_catalog.py``);
2. in-process: the service object's Recommend (auth, opt-out and recent-event lookups in
   SQLite, recommender) and QuotePrices for 20 items, p50/p99 over thousands of calls;
3. ``fairshelf serve`` in a subprocess; open-loop load from ``loadgen.py``: gRPC Recommend at
   1,000 requests/s for 60 s, then HTTP Recommend at 500 requests/s for 60 s; then the highest
   throughput it sustains over HTTP (closed loop), and its memory;
4. the naive baseline (``naive_server.py``: FastAPI + implicit ``recommend``, no index) under
   the same closed-loop HTTP load;
5. a Markdown table with each bar, the measured value and whether it was met.

Usage::

    python benchmarks/serve_bench.py [--dir benchmarks/out] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from serve_catalog import build_catalog_bundle  # noqa: E402

API_KEY = "sk-bench-0000000000000000000000"


def _pcts(samples: list[float]) -> tuple[float, float]:
    arr = np.array(samples) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def in_process(bundles: Path, work: Path, users: list[str], calls: int) -> dict[str, Any]:
    """Recommend and QuotePrices latency through the service object, no transport."""
    from serving.api_models import QuotePricesIn, RecommendIn
    from serving.logging import configure_logging
    from serving.metrics import Metrics
    from serving.pricing_wiring import build_pricing
    from serving.reload import ModelHolder, load_and_check, resolve_current
    from serving.service import CallContext, FairshelfService
    from serving.settings import load_settings
    from serving.store.db import Database
    from serving.store.events_store import EventsStore
    from serving.store.optouts_store import OptOutsStore

    settings = load_settings(
        None,
        bundles_dir=bundles,
        db_url=f"sqlite:///{work / 'inproc.db'}",
        api_keys={API_KEY: "admin"},
        log_level="warning",
    )
    configure_logging(settings.log_format, settings.log_level)
    db = Database(settings.db_url)
    holder = ModelHolder()
    target = resolve_current(bundles)
    assert target is not None
    holder.swap(load_and_check(target, settings.recsys))
    pricing = build_pricing(settings, db)
    if pricing is not None:
        pricing.on_model(holder.require())
    service = FairshelfService(
        settings,
        holder,
        EventsStore(db),
        OptOutsStore(db),
        Metrics(),
        quotes=pricing.quotes if pricing else None,
    )
    call = CallContext(API_KEY, "bench", "inproc")
    rng = np.random.default_rng(3)
    picks = [users[i] for i in rng.integers(0, len(users), calls + 200)]
    for u in picks[:200]:
        service.recommend(call, RecommendIn(user_id=u, k=20))
    svc: list[float] = []
    for u in picks[200:]:
        t = time.perf_counter()
        service.recommend(call, RecommendIn(user_id=u, k=20))
        svc.append(time.perf_counter() - t)
    out: dict[str, Any] = {"recommend": _pcts(svc)}
    # The recommender alone (no auth, no stores): what the index path costs.
    from recsys.types import RecommendRequest

    rec = holder.require().recommender
    core: list[float] = []
    for u in picks[200:]:
        t = time.perf_counter()
        rec.recommend(RecommendRequest(user_id=u, k=20), [], opted_out=False)
        core.append(time.perf_counter() - t)
    out["recommender_core"] = _pcts(core)
    if service.quotes is not None:
        item_ids = [str(i) for i in holder.require().bundle.item_ids]
        batches = [
            [item_ids[j] for j in rng.choice(len(item_ids), 20, replace=False)] for _ in range(50)
        ]
        for b in batches:  # warm: fair prices are pinned once per epoch
            service.quote_prices(call, QuotePricesIn(item_ids=b))
        qs: list[float] = []
        for n in range(calls):
            body = QuotePricesIn(item_ids=batches[n % len(batches)])
            t = time.perf_counter()
            service.quote_prices(call, body)
            qs.append(time.perf_counter() - t)
        out["quote20"] = _pcts(qs)
        pricing.close() if pricing else None
    db.close()
    return out


def _wait_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            continue
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"no '{prefix}' line within {timeout} s")


def _drain(proc: subprocess.Popen[str]) -> None:
    # Keep reading the server's stderr so its pipe never fills and blocks it.
    import threading

    def run() -> None:
        assert proc.stderr is not None
        for _ in proc.stderr:
            pass

    threading.Thread(target=run, daemon=True).start()


def _memory_mb(pid: int) -> tuple[float, float]:
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = float(value.split()[0]) / 1024.0
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))


def _loadgen(target: str, addr: str, users_file: Path, **kw: Any) -> dict[str, Any]:
    args = [
        sys.executable,
        str(HERE / "loadgen.py"),
        "--target",
        target,
        "--addr",
        addr,
        "--users",
        str(users_file),
        "--api-key",
        API_KEY,
    ]
    for key, value in kw.items():
        args += [f"--{key}", str(value)]
    done = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _wait_http(url: str, path: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}{path} not ready")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_and_load(
    bundles: Path,
    work: Path,
    users_file: Path,
    duration: float,
    sat_seconds: float,
    concurrency: int,
    grpc_rate: float,
    http_rate: float,
) -> dict[str, Any]:
    """Run fairshelf in a subprocess and load it over gRPC and HTTP."""
    config = work / "bench.toml"
    config.write_text(
        f'log_level = "warning"\ngrpc_max_workers = 8\n[api_keys]\n"{API_KEY}" = "storefront"\n'
    )
    db = work / "serve.db"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.cli.main",
            "serve",
            "--bundles",
            str(bundles),
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--db",
            f"sqlite:///{db}",
            "--config",
            str(config),
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        line = _wait_line(proc, "fairshelf serving:")
        _drain(proc)
        http_port = int(line.split("http://")[1].split()[0].rsplit(":", 1)[1])
        grpc_port = int(line.rsplit(":", 1)[1])
        url = f"http://127.0.0.1:{http_port}"
        _wait_http(url, "/readyz")
        out: dict[str, Any] = {}
        print(f"  gRPC open loop {grpc_rate:.0f}/s for {duration:.0f} s ...", flush=True)
        out["grpc"] = _loadgen(
            "grpc", f"127.0.0.1:{grpc_port}", users_file, rate=grpc_rate, duration=duration
        )
        print(f"  HTTP open loop {http_rate:.0f}/s for {duration:.0f} s ...", flush=True)
        out["http"] = _loadgen("http", url, users_file, rate=http_rate, duration=duration)
        print(f"  HTTP closed loop x{concurrency} for {sat_seconds:.0f} s ...", flush=True)
        out["http_max"] = _loadgen(
            "http", url, users_file, concurrency=concurrency, duration=sat_seconds
        )
        print(f"  gRPC closed loop x{concurrency} for {sat_seconds:.0f} s ...", flush=True)
        out["grpc_max"] = _loadgen(
            "grpc",
            f"127.0.0.1:{grpc_port}",
            users_file,
            concurrency=concurrency,
            duration=sat_seconds,
        )
        out["memory_mb"] = _memory_mb(proc.pid)
        return out
    finally:
        _stop(proc)


def naive_load(
    bundle: Path, users_file: Path, sat_seconds: float, concurrency: int
) -> dict[str, Any]:
    """Run the naive baseline in a subprocess under the closed-loop HTTP load."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "naive_server.py"), "--bundle", str(bundle)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        port = int(_wait_line(proc, "naive serving:").split(":")[1])
        _drain(proc)
        url = f"http://127.0.0.1:{port}"
        _wait_http(url, "/docs")
        print(f"  naive HTTP closed loop x{concurrency} for {sat_seconds:.0f} s ...", flush=True)
        out = _loadgen("http", url, users_file, concurrency=concurrency, duration=sat_seconds)
        out["memory_mb"] = _memory_mb(proc.pid)
        return out
    finally:
        _stop(proc)


def _row(what: str, bar: str, value: str, ok: bool | None) -> str:
    verdict = "n/a" if ok is None else ("met" if ok else "NOT met")
    return f"| {what} | {bar} | {value} | {verdict} |"


def render(
    n_items: int,
    n_users: int,
    inproc: dict[str, Any],
    served: dict[str, Any],
    naive: dict[str, Any] | None,
) -> str:
    """The result table (Markdown)."""
    rows = [
        f"Catalog: {n_items:,} items, {n_users:,} shoppers, k=20, {os.cpu_count()} cores.",
        "",
        "| measurement | bar | measured | verdict |",
        "|---|---|---|---|",
    ]
    p50, p99 = inproc["recommend"]
    rows.append(
        _row(
            "in-process Recommend (service: auth, stores, recommender)",
            "p99 <= 1 ms",
            f"p50 {p50:.3f} ms, p99 {p99:.3f} ms",
            p99 <= 1.0,
        )
    )
    c50, c99 = inproc["recommender_core"]
    rows.append(
        _row("in-process recommender alone", "-", f"p50 {c50:.3f} ms, p99 {c99:.3f} ms", None)
    )
    if "quote20" in inproc:
        q50, q99 = inproc["quote20"]
        rows.append(
            _row(
                "in-process QuotePrices, 20 items",
                "p99 <= 0.5 ms",
                f"p50 {q50:.3f} ms, p99 {q99:.3f} ms",
                q99 <= 0.5,
            )
        )
    else:
        rows.append(
            _row(
                "in-process QuotePrices, 20 items",
                "p99 <= 0.5 ms",
                "not measured: pricing not wired in serving",
                None,
            )
        )
    g, h = served["grpc"], served["http"]
    rows.append(
        _row(
            f"gRPC Recommend, {g['sent']:,} calls open loop",
            "p99 <= 5 ms, 0 errors",
            f"{g['rps']:.0f}/s, p50 {g['p50_ms']:.2f} ms, p99 {g['p99_ms']:.2f} ms, "
            f"errors {g['errors']}, late sends {g['late']}",
            g["p99_ms"] <= 5.0 and g["errors"] == 0,
        )
    )
    rows.append(
        _row(
            f"HTTP Recommend, {h['sent']:,} calls open loop",
            "p99 <= 10 ms, 0 errors",
            f"{h['rps']:.0f}/s, p50 {h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms, "
            f"errors {h['errors']}, late sends {h['late']}",
            h["p99_ms"] <= 10.0 and h["errors"] == 0,
        )
    )
    gm = served["grpc_max"]
    rows.append(
        _row(
            "fairshelf gRPC max throughput (closed loop)",
            "-",
            f"{gm['rps']:.0f}/s, p99 {gm['p99_ms']:.2f} ms, errors {gm['errors']}",
            None,
        )
    )
    m = served["http_max"]
    rows.append(
        _row(
            "fairshelf HTTP max throughput (closed loop)",
            "-",
            f"{m['rps']:.0f}/s, p99 {m['p99_ms']:.2f} ms, errors {m['errors']}",
            None,
        )
    )
    if naive is not None:
        ratio = m["rps"] / naive["rps"] if naive["rps"] else float("inf")
        rows.append(
            _row(
                "naive baseline HTTP max throughput",
                "-",
                f"{naive['rps']:.0f}/s, p99 {naive['p99_ms']:.2f} ms, errors {naive['errors']}",
                None,
            )
        )
        rows.append(_row("fairshelf / naive throughput", ">= 5x", f"{ratio:.1f}x", ratio >= 5))
    rss, hwm = served["memory_mb"]
    rows.append(
        _row(
            "fairshelf serving process memory",
            "printed",
            f"RSS {rss:.0f} MB (peak {hwm:.0f} MB)",
            None,
        )
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark and print the table; returns the table text."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=HERE / "out")
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--saturation-seconds", type=float, default=15.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--grpc-rate", type=float, default=1000.0)
    p.add_argument("--http-rate", type=float, default=500.0)
    p.add_argument("--calls", type=int, default=5000, help="in-process calls per operation")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--quick", action="store_true", help="small catalog, short runs (smoke)")
    args = p.parse_args(argv)
    if args.quick:
        args.items, args.users, args.duration, args.saturation_seconds = 5000, 10000, 5, 3
        args.calls = 500
    work = args.dir / f"{args.items}x{args.users}"
    work.mkdir(parents=True, exist_ok=True)
    print(f"building catalog in {work} ...", flush=True)
    bundle = build_catalog_bundle(work / "bundles", n_items=args.items, n_users=args.users)
    users = [f"U{u:07d}" for u in np.random.default_rng(1).choice(args.users, 20000)]
    users_file = work / "users.txt"
    users_file.write_text("\n".join(users))
    print("in-process ...", flush=True)
    inproc = in_process(work / "bundles", work, users, args.calls)
    print("fairshelf server ...", flush=True)
    served = serve_and_load(
        work / "bundles",
        work,
        users_file,
        args.duration,
        args.saturation_seconds,
        args.concurrency,
        args.grpc_rate,
        args.http_rate,
    )
    naive = None
    if not args.skip_naive:
        print("naive baseline ...", flush=True)
        naive = naive_load(bundle, users_file, args.saturation_seconds, args.concurrency)
    table = render(args.items, args.users, inproc, served, naive)
    print("\n" + table, flush=True)
    (work / "serve_bench.md").write_text(table + "\n")
    return table


if __name__ == "__main__":
    main()
