"""A steady, bounded load through the balancer, recording every call.

Each thread cycles through the storefront's calls (Recommend over HTTP and gRPC, event batches
over HTTP and gRPC, a price quote over HTTP), one call in flight at a time with a pause between
calls, so the rate is bounded and at most ``threads`` calls are in flight at any moment. Every
call is recorded with its outcome and the replica that answered (haproxy's
``x-fairshelf-backend`` header). Events carry unique ids; a batch that was acknowledged is
remembered, one that failed is kept for a retry once the fault is over.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
import httpx
from serving_support import KEYS

from proto.fairshelf.v1 import (
    events_pb2,
    events_pb2_grpc,
    recommendations_pb2,
    recommendations_pb2_grpc,
)

TIMEOUT = 5.0  # a call slower than this counts as a hang
SERVER_FAULTS = {"INTERNAL", "UNKNOWN", "TIMEOUT", "HTTP 500"}


@dataclass
class Call:
    """One call through the balancer."""

    started: float
    ended: float
    op: str
    transport: str
    code: str
    backend: str = ""
    user: str = ""
    personalized: bool | None = None
    quote_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code == "OK"


@dataclass
class Ledger:
    """What the load saw: every call, acknowledged event ids, batches to send again."""

    calls: list[Call] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    unacked: list[list[dict[str, object]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def between(self, start: float, end: float) -> list[Call]:
        """Calls that started in ``[start, end)``."""
        with self.lock:
            return [c for c in self.calls if start <= c.started < end]

    def snapshot(self) -> list[Call]:
        with self.lock:
            return list(self.calls)


def _http_code(resp: httpx.Response) -> str:
    if resp.status_code == 200:
        return "OK"
    try:
        return str(resp.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status_code}"  # answered by haproxy itself (502, 503, 504)


class SteadyLoad:
    """Threads calling through the balancer until :meth:`stop`.

    Parameters
    ----------
    http_url, grpc_target:
        The balancer.
    users, items:
        Shoppers and items to ask about.
    opted_out:
        Shoppers who switched personalization off: asked for often, never to be personalized.
    threads, pause:
        Concurrency (also the most calls in flight) and seconds between a thread's calls.
    tag:
        Prefix of every event id this load writes.
    """

    def __init__(
        self,
        http_url: str,
        grpc_target: str,
        users: Sequence[str],
        items: Sequence[str],
        opted_out: Sequence[str],
        *,
        threads: int = 3,
        pause: float = 0.03,
        tag: str = "load",
    ) -> None:
        self.http_url = http_url
        self.grpc_target = grpc_target
        self.users = list(users)
        self.items = list(items)
        self.opted_out = list(opted_out)
        self.threads = threads
        self.pause = pause
        self.tag = tag
        self.ledger = Ledger()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._seq = itertools.count()

    def __enter__(self) -> SteadyLoad:
        for n in range(self.threads):
            t = threading.Thread(target=self._run, args=(n,), name=f"load-{n}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the threads and wait for their last call."""
        self._stop.set()
        for t in self._workers:
            t.join(timeout=TIMEOUT * 3)

    def _user(self, n: int) -> str:
        # One call in three asks for an opted-out shopper.
        if self.opted_out and n % 3 == 0:
            return self.opted_out[n % len(self.opted_out)]
        return self.users[n % len(self.users)]

    def _events(self) -> list[dict[str, object]]:
        n = next(self._seq)
        return [
            {
                "event_id": f"{self.tag}-{uuid.uuid4().hex}",
                "user_id": self.users[(n + i) % len(self.users)],
                "item_id": self.items[(n * 7 + i) % len(self.items)],
                "event_type": "view",
                "unit_price": 9.99,
            }
            for i in range(2)
        ]

    def _run(self, thread: int) -> None:
        http = httpx.Client(
            base_url=self.http_url, timeout=TIMEOUT, headers={"x-api-key": KEYS["storefront"]}
        )
        channel = grpc.insecure_channel(self.grpc_target)
        recs = recommendations_pb2_grpc.RecommendationServiceStub(channel)
        events = events_pb2_grpc.EventServiceStub(channel)
        md = (("x-api-key", KEYS["storefront"]),)
        ops = itertools.cycle(["rec_http", "rec_grpc", "events_http", "events_grpc", "quote_http"])
        try:
            for n in itertools.count(thread * 1000):
                if self._stop.is_set():
                    return
                op = next(ops)
                started = time.monotonic()
                call = Call(started, started, op.split("_")[0], op.split("_")[1], "OK")
                batch: list[dict[str, object]] = []
                try:
                    if op == "rec_http":
                        call.user = self._user(n)
                        resp = http.post("/v1/recommend", json={"user_id": call.user, "k": 10})
                        call.code = _http_code(resp)
                        call.backend = resp.headers.get("x-fairshelf-backend", "")
                        if call.ok:
                            call.personalized = bool(resp.json()["personalized"])
                    elif op == "rec_grpc":
                        call.user = self._user(n)
                        req = recommendations_pb2.RecommendRequest(user_id=call.user, k=10)
                        out, rpc = recs.Recommend.with_call(req, metadata=md, timeout=TIMEOUT)
                        call.personalized = out.personalized
                        call.backend = dict(rpc.initial_metadata()).get("x-fairshelf-backend", "")
                    elif op == "events_http":
                        batch = self._events()
                        resp = http.post("/v1/events", json={"events": batch})
                        call.code = _http_code(resp)
                        call.backend = resp.headers.get("x-fairshelf-backend", "")
                    elif op == "events_grpc":
                        batch = self._events()
                        req_ev = events_pb2.LogEventsRequest(
                            events=[events_pb2.Event(**e) for e in batch]  # type: ignore[arg-type]
                        )
                        _, rpc = events.LogEvents.with_call(req_ev, metadata=md, timeout=TIMEOUT)
                        call.backend = dict(rpc.initial_metadata()).get("x-fairshelf-backend", "")
                    else:
                        ids = [self.items[(n + i) % len(self.items)] for i in range(3)]
                        resp = http.post("/v1/prices/quote", json={"item_ids": ids})
                        call.code = _http_code(resp)
                        call.backend = resp.headers.get("x-fairshelf-backend", "")
                        if call.ok:
                            call.quote_ids = tuple(q["quote_id"] for q in resp.json()["quotes"])
                except grpc.RpcError as err:
                    code = err.code()  # type: ignore[attr-defined]
                    call.code = (
                        "TIMEOUT" if code == grpc.StatusCode.DEADLINE_EXCEEDED else code.name
                    )
                except httpx.TimeoutException:
                    call.code = "TIMEOUT"
                except httpx.HTTPError as err:
                    call.code = f"TRANSPORT {type(err).__name__}"
                call.ended = time.monotonic()
                with self.ledger.lock:
                    self.ledger.calls.append(call)
                    if batch:
                        if call.ok:
                            self.ledger.acked.update(str(e["event_id"]) for e in batch)
                        else:
                            self.ledger.unacked.append(batch)
                self._stop.wait(self.pause)
        finally:
            http.close()
            channel.close()

    def resend_unacked(self) -> int:
        """Send every failed batch again (same event ids) until acknowledged; return how many
        events were already stored (their first attempt had been written after all)."""
        duplicates = 0
        with httpx.Client(
            base_url=self.http_url, timeout=TIMEOUT, headers={"x-api-key": KEYS["storefront"]}
        ) as http:
            with self.ledger.lock:
                pending, self.ledger.unacked = self.ledger.unacked, []
            for batch in pending:
                deadline = time.monotonic() + 30
                while True:
                    resp = http.post("/v1/events", json={"events": batch})
                    if resp.status_code == 200:
                        duplicates += int(resp.json()["duplicates"])
                        with self.ledger.lock:
                            self.ledger.acked.update(str(e["event_id"]) for e in batch)
                        break
                    assert time.monotonic() < deadline, f"batch not accepted: {resp.text}"
                    time.sleep(0.2)
        return duplicates
