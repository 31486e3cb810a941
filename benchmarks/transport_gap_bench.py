"""Where a Recommend call's server CPU goes above the transport floor, one layer at a time.

The serving benchmark (``serve_bench.py``) sets fairshelf's CPU per call against the floor's
plus the in-process service's; this one splits the difference, per transport. Four servers,
each one process on loopback with the same stack as ``fairshelf serve`` (gRPC: grpcio's
asyncio server on a uvloop thread; HTTP: uvicorn with httptools and uvloop), loaded in turn by
h2load in a closed loop (``--concurrency`` connections, one call in flight each), in
``--rounds`` rounds so that every server sees the host in the same states:

- ``floor``: the transport floor's handler (``floor_server.py``), a prebuilt 20-item answer;
- ``adapter``: fairshelf's adapter around the same prebuilt answer (gRPC,
  ``serving.grpc_server``: metadata, request id, call context, deadline check, decoding,
  trailing metadata; HTTP, ``serving.http_hot``: headers, JSON decoding and validation, call
  context, the answer's JSON);
- ``service``: the adapter around the real service object as the server builds it
  (``service_under_load.build_service``: stores, exposure log, metrics), in this process;
- ``fairshelf``: ``fairshelf serve`` itself, one process.

For each: server CPU per call (every thread), and the event-loop thread's share. In the
``service`` server the service call also times itself (thread CPU per call), and before the
load the same call is timed in a hot loop; with ``--repeat`` (gRPC) one more server runs every
call a second time at once and times that one apart: a call right after another one costs
about what the hot loop costs, the first one after the transport's work costs more, which is
what the transport's work does to the caches of the thread it shares with the service.

Usage::

    python benchmarks/transport_gap_bench.py [--dir benchmarks/out/100000x200000]
        [--transports grpc,http] [--seconds 8] [--rounds 3] [--concurrency 16] [--repeat]
"""

from __future__ import annotations

import one_thread_env  # noqa: F401  (sets thread counts before numpy loads)

# isort: split
import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

API_KEY = "sk-bench-0000000000000000000000"
METHOD = "/fairshelf.v1.RecommendationService/Recommend"
HTTP_PATH = "/v1/recommend"
TRANSPORTS = ("grpc", "http")
VARIANTS = ("floor", "adapter", "service", "fairshelf")
CLK = os.sysconf("SC_CLK_TCK")


def _hot_cpu_ms(fn: Callable[[], Any], calls: int = 2000) -> float:
    """Thread CPU (ms) per call of ``fn`` in a hot loop, after a warm-up."""
    for _ in range(300):
        fn()
    t0 = time.thread_time()
    for _ in range(calls):
        fn()
    return 1000.0 * (time.thread_time() - t0) / calls


def _http_app(variant: str, bundles: Path, work: Path) -> tuple[Any, dict[str, Any]]:
    """The ASGI app of ``variant`` and the dict its per-call timings accumulate in."""
    from floor_server import http_app, prebuilt

    from serving.api_models import RecommendIn
    from serving.http_hot import HotRoutes
    from serving.service import CallContext

    stats: dict[str, Any] = {"calls": 0, "cpu_s": 0.0}
    if variant == "floor":
        return http_app(), stats

    async def unexpected(scope: Any, _receive: Any, _send: Any) -> None:
        # Every request of this benchmark is a well-formed recommend call.
        raise RuntimeError(f"not served by the recommend route: {scope.get('path')}")

    if variant == "adapter":
        answer = prebuilt()

        class Prebuilt:
            def recommend(self, _call: Any, _body: Any) -> Any:
                return answer

        return HotRoutes(unexpected, Prebuilt()), stats  # type: ignore[arg-type]
    from service_under_load import build_service

    service, closing = build_service(bundles, work / "gap.db", API_KEY)
    stats["_service"] = closing
    body = RecommendIn(user_id=_users(bundles)[0], k=20)
    ctx = CallContext(API_KEY, "hot", "http")
    stats["hot_cpu_ms"] = _hot_cpu_ms(lambda: service.recommend(ctx, body))

    class Timed:
        def recommend(self, call: Any, request: Any) -> Any:
            t = time.thread_time()
            out = service.recommend(call, request)
            stats["cpu_s"] += time.thread_time() - t
            stats["calls"] += 1
            return out

    return HotRoutes(unexpected, Timed()), stats  # type: ignore[arg-type]


def _handler(variant: str, bundles: Path, work: Path, repeat: bool) -> tuple[Any, dict[str, Any]]:
    """The unary handler of ``variant`` and the dict its per-call timings accumulate in."""
    from floor_server import grpc_answer

    from proto.fairshelf.v1 import recommendations_pb2
    from serving import grpc_convert as conv
    from serving import grpc_server

    answer = grpc_answer()
    stats: dict[str, Any] = {"calls": 0, "cpu_s": 0.0, "repeat_cpu_s": 0.0}
    if variant == "floor":

        async def bare(_raw: bytes, _context: Any) -> Any:
            return answer

        return bare, stats
    if variant == "adapter":
        wrapped = grpc_server._unary(
            None,  # type: ignore[arg-type]  # the handler never reads the service
            recommendations_pb2.RecommendRequest,
            lambda _s, _c, _r: answer,
            None,
        )
        return wrapped, stats
    from service_under_load import build_service

    from serving.service import CallContext

    service, _closing = build_service(bundles, work / "gap.db", API_KEY)
    stats["_service"] = _closing

    def call(s: Any, c: Any, r: Any) -> Any:
        return conv.recommend_pb(s.recommend(c, conv.recommend_in(r)))

    # The same call in a hot loop, before any load: what the in-process figure measures.
    req = recommendations_pb2.RecommendRequest(user_id=_users(bundles)[0], k=20)
    ctx = CallContext(API_KEY, "hot", "grpc")
    stats["hot_cpu_ms"] = _hot_cpu_ms(lambda: call(service, ctx, req))

    def timed(s: Any, c: Any, r: Any) -> Any:
        t = time.thread_time()
        out = call(s, c, r)
        stats["cpu_s"] += time.thread_time() - t
        if repeat:
            t = time.thread_time()
            call(s, c, r)
            stats["repeat_cpu_s"] += time.thread_time() - t
        stats["calls"] += 1
        return out

    return grpc_server._unary(service, recommendations_pb2.RecommendRequest, timed, None), stats


def _serve_http(variant: str, port: int, bundles: Path, work: Path) -> None:
    import uvicorn

    app, stats = _http_app(variant, bundles, work)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    # The configuration of floor_server.py and serving.app.FairshelfServer.
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", http="httptools",
            loop="uvloop",
        )
    )  # fmt: skip
    loop_tid: list[int] = []

    def run() -> None:
        loop_tid.append(threading.get_native_id())
        server.run(sockets=[sock])

    thread = threading.Thread(target=run, name="gap-http", daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    _until_sigterm(loop_tid[0])
    server.should_exit = True
    thread.join(timeout=10)
    _report(stats)


def _until_sigterm(loop_tid: int) -> None:
    """Announce the server (with its event-loop thread's id) and wait for SIGTERM."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"ready {loop_tid}", flush=True)
    done.wait()


def _report(stats: dict[str, Any]) -> None:
    """Close the service object, if any (its exposure writer drains), and print the timings."""
    closing = stats.pop("_service", None)
    if closing is not None:
        closing.close()
    print(json.dumps(stats), flush=True)


def serve(transport: str, variant: str, port: int, bundles: Path, repeat: bool) -> None:
    """Child process: one server until SIGTERM, then its handler's timings on stdout."""
    import grpc
    import uvloop

    from serving.logging import configure_logging

    configure_logging("json", "warning")
    work = Path(tempfile.mkdtemp(prefix="transport-gap-"))
    if transport == "http":
        _serve_http(variant, port, bundles, work)
        return
    handler, stats = _handler(variant, bundles, work, repeat)
    loop = uvloop.new_event_loop()
    loop_tid: list[int] = []

    def run() -> None:
        loop_tid.append(threading.get_native_id())
        loop.run_forever()

    threading.Thread(target=run, name="gap-grpc", daemon=True).start()

    async def build() -> Any:
        # The options ``fairshelf serve`` uses (see floor_server.py).
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)], maximum_concurrent_rpcs=128)
        method = grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=None, response_serializer=lambda m: m.SerializeToString()
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(METHOD.split("/")[1], {"Recommend": method}),)
        )
        if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
            raise OSError(f"cannot bind 127.0.0.1:{port}")
        await server.start()
        return server

    server = asyncio.run_coroutine_threadsafe(build(), loop).result(timeout=30)
    _until_sigterm(loop_tid[0])
    asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(timeout=10)
    _report(stats)


def _users(bundles: Path) -> list[str]:
    from recsys.bundle import load_bundle

    ids = load_bundle(bundles / "current").user_ids
    return [str(u) for u in ids[:: max(1, len(ids) // 50)][:50]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _thread_cpu(pid: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK
    return out


def _start(
    transport: str, variant: str, port: int, bundles: Path, repeat: bool, work: Path
) -> tuple[Any, int]:
    """Start one server; returns the process and its event-loop thread id (0: unknown)."""
    if variant == "fairshelf":
        http_port, grpc_port = (port, 0) if transport == "http" else (0, port)
        config = work / "bench.toml"
        config.write_text(f'log_level = "warning"\n[api_keys]\n"{API_KEY}" = "storefront"\n')
        db = work / f"serve-{port}.db"
        proc = subprocess.Popen(
            [sys.executable, "-m", "fairshelf.cli.main", "serve", "--bundles", str(bundles),
             "--http-port", str(http_port), "--grpc-port", str(grpc_port),
             "--db", f"sqlite:///{db}",
             "--config", str(config)],
            cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("fairshelf serving:"):
                break
        else:
            raise RuntimeError(f"fairshelf serve exited with {proc.wait()}")
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
        time.sleep(1.0)
        return proc, 0
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", variant, "--transports", transport,
         "--port", str(port),
         "--dir", str(bundles.parent)] + (["--repeat"] if repeat else []),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError(f"{variant} server did not start ({proc.wait()})")
    return proc, int(line.split()[1])


def _h2load(transport: str, port: int, body: Path, concurrency: int, seconds: float) -> int:
    """Successful calls of one closed-loop h2load run."""
    if transport == "http":
        how = ["--h1", "-H", "content-type: application/json"]
        url = f"http://127.0.0.1:{port}{HTTP_PATH}"
    else:
        how = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
        url = f"http://127.0.0.1:{port}{METHOD}"
    args = [
        "h2load", *how, "-c", str(concurrency), "-m", "1",
        "-D", f"{max(1, round(seconds))}", "-d", str(body),
        "-H", f"x-api-key: {API_KEY}", url,
    ]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+) succeeded", out)
    return int(found.group(1)) if found else 0


def measure(
    transport: str,
    variant: str,
    port: int,
    bundles: Path,
    body: Path,
    args: argparse.Namespace,
    work: Path,
    repeat: bool = False,
) -> dict[str, Any]:
    """One round of one server: CPU per call, loop thread share, handler timings."""
    proc, loop_tid = _start(transport, variant, port, bundles, repeat, work)
    try:
        _h2load(transport, port, body, args.concurrency, 2.0)  # warm
        before = _thread_cpu(proc.pid)
        ok = _h2load(transport, port, body, args.concurrency, args.seconds)
        after = _thread_cpu(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
    stats: dict[str, Any] = {}
    if proc.stdout is not None:
        for line in proc.stdout:
            if line.startswith("{"):
                stats = json.loads(line)
    proc.wait(timeout=30)
    if ok == 0:
        raise RuntimeError(f"{transport} {variant}: no successful call")
    spent = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    if not loop_tid:  # fairshelf serve: its busiest thread is the event loop's
        loop_tid = max(spent, key=lambda t: spent[t])
    out = {
        "calls": ok,
        "cpu_ms": 1000.0 * sum(spent.values()) / ok,
        "loop_ms": 1000.0 * spent.get(loop_tid, 0.0) / ok,
    }
    if stats.get("calls"):
        out["handler_ms"] = 1000.0 * stats["cpu_s"] / stats["calls"]
        out["hot_ms"] = float(stats["hot_cpu_ms"])
        if repeat:
            out["repeat_ms"] = 1000.0 * stats["repeat_cpu_s"] / stats["calls"]
    return out


def render(transport: str, rows: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    """The table: medians over rounds, each step's difference from the one before."""

    def med(name: str, key: str) -> float | None:
        vals = [r[key] for r in rows[name] if key in r]
        return float(np.median(vals)) if vals else None

    lines = [
        f"{'gRPC' if transport == 'grpc' else 'HTTP'} Recommend, one server process, h2load "
        f"closed loop x{args.concurrency}, "
        f"{args.seconds:g} s x {args.rounds} rounds (medians); CPU per call in ms",
        "",
        "| server | calls/s | CPU/call, all threads | step | event-loop thread |",
        "|---|---|---|---|---|",
    ]
    prev: float | None = None
    for name in VARIANTS:
        cpu = med(name, "cpu_ms")
        rate = float(np.median([r["calls"] for r in rows[name]])) / args.seconds
        step = "-" if prev is None or cpu is None else f"{cpu - prev:+.3f}"
        lines.append(f"| {name} | {rate:,.0f} | {cpu:.3f} | {step} | {med(name, 'loop_ms'):.3f} |")
        prev = cpu
    hot, inside = med("service", "hot_ms"), med("service", "handler_ms")
    what = "conversions included" if transport == "grpc" else "the service object only"
    if hot is not None and inside is not None:
        lines += [
            "",
            f"- the service call ({what}) in a hot loop in the same process: "
            f"{hot:.3f} ms of thread CPU; the same call inside the server under load: "
            f"{inside:.3f} ms ({inside / hot:.2f}x)",
        ]
        again = med("repeat", "repeat_ms") if "repeat" in rows else None
        if again is not None:
            first = med("repeat", "handler_ms") or inside
            lines.append(
                f"- the same call run again at once after each one: {again:.3f} ms "
                f"({again / hot:.2f}x the hot loop): the first call after the transport's "
                f"work costs {first - again:.3f} ms more ({first:.3f} ms in that server)"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=HERE / "out" / "100000x200000")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument(
        "--transports", default="grpc,http", help="comma-separated: grpc, http (default both)"
    )
    ap.add_argument(
        "--repeat",
        action="store_true",
        help="gRPC: one more service server per round that runs each call twice (timed apart)",
    )
    ap.add_argument("--serve", choices=VARIANTS[:3], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    transports = [t for t in args.transports.split(",") if t]
    bad = sorted(set(transports) - set(TRANSPORTS))
    if bad or not transports:
        ap.error(f"--transports: {', '.join(bad) or 'none given'}; choose from grpc, http")
    bundles = args.dir / "bundles"
    if args.serve:
        serve(transports[0], args.serve, args.port, bundles, args.repeat)
        return
    from h2load_driver import available
    from serve_catalog import build_catalog_bundle

    if not available():
        raise SystemExit("h2load is not on PATH (Debian: nghttp2-client)")
    args.dir.mkdir(parents=True, exist_ok=True)
    build_catalog_bundle(bundles, n_items=args.items, n_users=args.users, log=False)
    users = _users(bundles)
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for transport in transports:
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
            for r in range(args.rounds):
                body = _body(transport, users[r % len(users)], work / f"{transport}-{r}.body")
                for name in VARIANTS:
                    got = measure(transport, name, _free_port(), bundles, body, args, work)
                    rows[name].append(got)
                    print(f"  {transport} round {r + 1} {name}: {json.dumps(got)}", flush=True)
                if args.repeat and transport == "grpc":
                    got = measure(
                        transport, "service", _free_port(), bundles, body, args, work, True
                    )
                    rows.setdefault("repeat", []).append(got)
                    print(f"  grpc round {r + 1} service, each call twice: {json.dumps(got)}")
            tables.append(render(transport, rows, args))
    print("\n\n".join(tables))


def _body(transport: str, user: str, path: Path) -> Path:
    """The request body h2load posts: a gRPC frame or the JSON of ``POST /v1/recommend``."""
    if transport == "http":
        path.write_text(json.dumps({"user_id": user, "k": 20}))
        return path
    from proto.fairshelf.v1 import recommendations_pb2

    raw = recommendations_pb2.RecommendRequest(user_id=user, k=20).SerializeToString()
    path.write_bytes(b"\x00" + len(raw).to_bytes(4, "big") + raw)
    return path


if __name__ == "__main__":
    main()
