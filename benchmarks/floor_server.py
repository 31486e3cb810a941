"""The serving benchmark's transport floor: fairshelf's two servers with nothing behind them.

Each worker process runs what ``fairshelf serve`` runs, minus the service: grpcio's asyncio
server on its own uvloop thread (same options, same generic-handler registration, same
response serializer as :class:`serving.grpc_server.GrpcServer`) and uvicorn in a thread (same
configuration as :class:`serving.app.FairshelfServer`: httptools, uvloop, a TCP socket so that
replies are not held back by delayed ACKs). The gRPC Recommend method and ``POST
/v1/recommend`` answer one prebuilt 20-item response, built once through fairshelf's own
converters, so the bytes on the wire are the size of a real answer. What this server costs
per call is what no adapter over these libraries can avoid; the benchmark sets fairshelf's
throughput against it.

With ``--workers N`` the parent holds both ports (``SO_REUSEPORT``, as the supervisor of
``fairshelf serve --workers N`` does), starts N worker processes on them, prints
``floor serving: HTTP_PORT GRPC_PORT`` once all of them serve, and stops them on SIGTERM.

With ``--pin-workers`` each worker keeps to one core, as the workers of ``fairshelf serve``
with the ``pin_workers`` setting do.

Usage::

    python benchmarks/floor_server.py [--workers N] [--pin-workers]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import grpc  # noqa: E402
import uvicorn  # noqa: E402
import uvloop  # noqa: E402

from proto.fairshelf.v1 import recommendations_pb2  # noqa: E402
from recsys.types import RecommendedItem  # noqa: E402
from serving.api_models import RecommendResult  # noqa: E402
from serving.cpu_affinity import WORKER_CPU_ENV, pin_from_env, worker_cpu  # noqa: E402
from serving.grpc_convert import recommend_pb  # noqa: E402
from serving.http_responses import CompactJSONResponse  # noqa: E402
from serving.workers import reserve_port  # noqa: E402

SERVICE = "fairshelf.v1.RecommendationService"
HTTP_PATH = "/v1/recommend"
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def prebuilt() -> RecommendResult:
    """A 20-item answer shaped like the benchmark catalog's."""
    items = tuple(
        RecommendedItem(f"I{i * 4973 % 100_000:06d}", 1.0 - i / 64.0, "als") for i in range(20)
    )
    return RecommendResult(
        items=items,
        quotes={},
        model_version="bench-20261205-000000",
        variant="control",
        personalized=True,
        strategy="trained_vector",
        request_id="0" * 32,
        currency="EUR",
    )


def grpc_answer() -> recommendations_pb2.RecommendResponse:
    """The prebuilt answer as the proto message gRPC Recommend returns."""
    return recommend_pb(prebuilt())


def http_answer() -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The prebuilt answer's JSON body and the headers fairshelf sends with it."""
    body = CompactJSONResponse(prebuilt().to_json()).body
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", b"0" * 32),
    ]
    return body, headers


def http_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI endpoint that reads the request body and answers the prebuilt response."""
    body, headers = http_answer()
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    reply = {"type": "http.response.body", "body": body}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send(start)
        await send(reply)

    return app


def _grpc_server(port: int, loop: asyncio.AbstractEventLoop) -> grpc.aio.Server:
    answer = grpc_answer()

    async def recommend(_raw: bytes, _context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return answer

    async def build() -> grpc.aio.Server:
        # The options fairshelf serve uses under --workers (settings' defaults).
        server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 1),
                ("grpc.max_connection_age_ms", 60_000),
                ("grpc.max_connection_age_grace_ms", 10_000),
            ],
            maximum_concurrent_rpcs=128,
        )
        handler = grpc.unary_unary_rpc_method_handler(
            recommend,
            request_deserializer=None,
            response_serializer=lambda m: m.SerializeToString(),
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Recommend": handler}),)
        )
        if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
            raise OSError(f"cannot bind gRPC to 127.0.0.1:{port}")
        await server.start()
        return server

    return asyncio.run_coroutine_threadsafe(build(), loop).result(timeout=30)


def worker(http_port: int, grpc_port: int) -> None:
    """One worker: both servers, until SIGTERM."""
    pin_from_env()  # as a worker of ``fairshelf serve`` with pin_workers, before any thread
    loop = uvloop.new_event_loop()
    threading.Thread(target=loop.run_forever, name="floor-grpc", daemon=True).start()
    # Held until the end: a grpc.aio server that is garbage-collected stops serving.
    grpc_server = _grpc_server(grpc_port, loop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", http_port))
    server = uvicorn.Server(
        uvicorn.Config(
            http_app(),
            log_config=None,
            access_log=False,
            lifespan="off",
            http="httptools",
            loop="uvloop",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="floor-http", daemon=True
    )
    thread.start()
    while not server.started:
        time.sleep(0.01)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    server.should_exit = True
    thread.join(timeout=5)
    asyncio.run_coroutine_threadsafe(grpc_server.stop(1.0), loop).result(timeout=10)


def main() -> None:
    """Hold the ports, start the workers, report the ports, stop them all on SIGTERM."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--worker", nargs=2, type=int, metavar=("HTTP_PORT", "GRPC_PORT"))
    p.add_argument(
        "--pin-workers", action="store_true", help="one core per worker, as pin_workers does"
    )
    args = p.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    held = [reserve_port("127.0.0.1", 0), reserve_port("127.0.0.1", 0)]
    http_port, grpc_port = (int(s.getsockname()[1]) for s in held)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(http_port), str(grpc_port)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, WORKER_CPU_ENV: str(worker_cpu(slot))} if args.pin_workers else None,
        )
        for slot in range(args.workers)
    ]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"floor worker {proc.pid} exited with {proc.wait()}")
        print(f"floor serving: {http_port} {grpc_port}", file=sys.stderr, flush=True)
        stop.wait()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sock in held:
            sock.close()


if __name__ == "__main__":
    main()
