"""Load generator for the serving benchmark: runs in its own process, prints one JSON line.

Two modes:

* open loop (``--rate R --duration S``): requests are issued on a fixed schedule of R per
  second whatever the answers do, so a slow server cannot slow the load down; latency is
  measured per call from the moment it is sent, and ``late`` counts calls the client itself
  could not send within 5 ms of their slot (a client-side limit, reported, not hidden);
* closed loop (``--concurrency C --duration S``): C workers send back-to-back, measuring the
  throughput the server sustains.

Targets: ``grpc`` (fairshelf ``Recommend``), ``http`` (``POST /v1/recommend``; the same body
works for the naive baseline server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

Caller = Callable[[str], Awaitable[None]]


def _summary(
    latencies: list[float], errors: int, sent: int, elapsed: float, late: int
) -> dict[str, Any]:
    lat = np.array(latencies, dtype=np.float64) * 1000.0
    pct = (lambda q: float(np.percentile(lat, q))) if lat.size else (lambda q: float("nan"))
    return {
        "sent": sent,
        "ok": int(lat.size),
        "errors": errors,
        "late": late,
        "seconds": round(elapsed, 3),
        "rps": round(lat.size / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(pct(50), 3),
        "p90_ms": round(pct(90), 3),
        "p99_ms": round(pct(99), 3),
        "p999_ms": round(pct(99.9), 3),
        "max_ms": round(float(lat.max()), 3) if lat.size else float("nan"),
    }


async def _grpc_caller(
    addr: str, api_key: str, k: int
) -> tuple[Caller, Callable[[], Awaitable[None]]]:
    import grpc

    from proto.fairshelf.v1 import recommendations_pb2, recommendations_pb2_grpc

    channel = grpc.aio.insecure_channel(addr)
    await asyncio.wait_for(channel.channel_ready(), 10)
    stub = recommendations_pb2_grpc.RecommendationServiceStub(channel)
    metadata = (("x-api-key", api_key),)

    async def call(user: str) -> None:
        resp = await stub.Recommend(
            recommendations_pb2.RecommendRequest(user_id=user, k=k), metadata=metadata, timeout=5
        )
        if len(resp.items) == 0:
            raise RuntimeError("empty list")

    async def close() -> None:
        await channel.close(None)

    return call, close


class _Conn:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol.

    A minimal client keeps the load generator's own CPU cost per request far below a
    general-purpose client's, so that the server, not the client, is what gets measured.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return status, await self.reader.readexactly(length)


async def _http_caller(
    url: str, api_key: str, k: int
) -> tuple[Caller, Callable[[], Awaitable[None]]]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    conns: list[_Conn] = []
    for _ in range(64):
        reader, writer = await asyncio.open_connection(host, int(port))
        conns.append(_Conn(reader, writer))
        pool.put_nowait(conns[-1])
    head = (
        f"POST /v1/recommend HTTP/1.1\r\nhost: {host}:{port}\r\nx-api-key: {api_key}\r\n"
        "content-type: application/json\r\ncontent-length: "
    ).encode()

    async def call(user: str) -> None:
        conn = await pool.get()
        try:
            body = json.dumps({"user_id": user, "k": k}).encode()
            status, payload = await asyncio.wait_for(conn.post(head, body), 5)
        except BaseException:
            # A connection in an unknown state is replaced, not reused.
            reader, writer = await asyncio.open_connection(host, int(port))
            conn = _Conn(reader, writer)
            raise
        finally:
            pool.put_nowait(conn)
        if status != 200 or b'"item_id"' not in payload:
            raise RuntimeError(f"HTTP {status}")

    async def close() -> None:
        for c in conns:
            c.writer.close()

    return call, close


async def _open_loop(
    call: Caller, users: list[str], rate: float, duration: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    late = 0
    n = int(rate * duration)
    rng = random.Random(7)
    tasks: set[asyncio.Task[None]] = set()

    async def one(user: str) -> None:
        nonlocal errors
        t = time.perf_counter()
        try:
            await call(user)
        except Exception:
            errors += 1
            return
        latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    for i in range(n):
        slot = start + i / rate
        delay = slot - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1
        task = asyncio.create_task(one(rng.choice(users)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=10)
    elapsed = time.perf_counter() - start
    return _summary(latencies, errors, n, elapsed, late)


async def _closed_loop(
    call: Caller, users: list[str], concurrency: int, duration: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.perf_counter() + duration

    async def worker(seed: int) -> None:
        nonlocal errors, sent
        rng = random.Random(seed)
        while time.perf_counter() < stop_at:
            sent += 1
            t = time.perf_counter()
            try:
                await call(rng.choice(users))
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in range(concurrency)))
    return _summary(latencies, errors, sent, time.perf_counter() - start, 0)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    users = [u for u in Path(args.users).read_text().splitlines() if u]
    if args.target == "grpc":
        call, close = await _grpc_caller(args.addr, args.api_key, args.k)
    else:
        call, close = await _http_caller(args.addr, args.api_key, args.k)
    try:
        # Warm-up: connections, caches, lazy imports on the server.
        for user in users[:50]:
            await call(user)
        if args.concurrency:
            return await _closed_loop(call, users, args.concurrency, args.duration)
        return await _open_loop(call, users, args.rate, args.duration)
    finally:
        await close()


def add_load_arguments(p: argparse.ArgumentParser) -> None:
    """The command line every load client of the serving benchmark takes (this one, h2load's)."""
    p.add_argument("--target", choices=["grpc", "http"], required=True)
    p.add_argument("--addr", required=True, help="host:port (grpc) or http://host:port")
    p.add_argument("--users", required=True, help="file with one user id per line")
    p.add_argument("--api-key", default="")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--concurrency", type=int, default=0, help="closed loop when > 0")
    p.add_argument("--duration", type=float, default=10.0)


def main(argv: list[str] | None = None) -> None:
    """Run one load test and print its summary as a JSON line on stdout."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(p)
    args = p.parse_args(argv)
    result = asyncio.run(_main(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
