"""Load generator for the serving benchmark built on h2load (nghttp2's C client).

Same command line and the same one-line JSON summary as ``loadgen.py`` (sent, ok, errors,
late, seconds, rps, p50_ms ... max_ms), plus h2load's own counts and the server-side error
counts, so ``serve_bench.py`` can use either. The point of it: the Python client spends about
0.5 ms of CPU per gRPC call, half a core at 1,000 calls/s on a 2-core machine, taken from the
server it measures; h2load spends tens of microseconds per call (plus about 10 ms to start).

How the load is shaped, and why:

* **Lanes.** h2load posts one fixed body per process (``-d FILE``) and has no way to vary it
  per request (``-i`` and ``--timing-script-file`` only vary the URI, and the shopper id is in
  the body for both gRPC and ``POST /v1/recommend``). So the load is spread over *lanes*: a
  lane is a sequence of h2load processes with one connection each (``-c 1``), each process
  running one *segment* (5 s or more) with its own shopper's body. Lanes cut their segments at
  different moments, so process starts are spread out rather than bursting. A 60 s run touches
  about 200-250 distinct shoppers, which is plenty: the server caches nothing per shopper.
* **Open loop** (``--rate R``): each lane sends at ``--rps R/lanes`` with ``-n`` requests per
  segment (not ``-D``: h2load cuts off whatever is in flight when ``-D`` ends, while with
  ``-n`` it waits for every answer, up to a 10 s inactivity limit), and lane i's slots sit
  ``i/R`` s after lane 0's, so the lanes together send on an even schedule. A single h2load
  with ``-c N --rps r`` would fire all N connections' timers at the same instant (measured: 32
  connections at 15/s gave 32-request bursts every 67 ms and a 19.5 ms mean latency on a 1 ms
  call), and its send timer ticks about every 10 ms, so a lane sends at most 50/s. gRPC lanes
  allow 64 streams in flight (``-m 64``), so a slow answer never delays the next send; HTTP/1.1
  carries one request at a time per connection (h2load does not pipeline with ``-d``), so HTTP
  uses at least 64 lanes. A send h2load issued more than 5 ms after its slot (its streams or
  its connection busy) counts as ``late``, computed from the log.
* **Closed loop** (``--concurrency C``): C lanes with one request in flight each, ``-D`` per
  segment; the few requests in flight when a segment ends are reported as ``cut_off``.
* **Throughput** (``rps``) counts 2xx answers that ended while every lane had load running
  (lanes start up to 2 s apart), per second of that window (``seconds``).
* **Latency** comes from ``--log-file`` (start time, HTTP status, microseconds to the end of
  the response): percentiles over the rows with status 200. Anything done and not 2xx
  (another status, a failed stream, a timeout) is an error.
* **gRPC errors** travel in trailers under HTTP status 200, which h2load does not read. So with
  ``--metrics-url`` the driver reads the server's ``fairshelf_requests_total`` for Recommend
  before and after the run: non-OK codes are server-side errors, and 200 answers the service
  never counted (e.g. RESOURCE_EXHAUSTED from the gRPC concurrency limit, refused before the
  service) are errors too. For gRPC ``errors`` is h2load's errors plus the server's; for HTTP
  both see the same non-2xx answers, so ``errors`` is the larger of the two, not their sum.

Usage::

    python benchmarks/h2load_driver.py --target grpc --addr 127.0.0.1:50051 --users FILE \
        --api-key KEY --rate 1000 --duration 60 [--metrics-url http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from loadgen import add_load_arguments  # noqa: E402

GRPC_PATH = "/fairshelf.v1.RecommendationService/Recommend"
HTTP_PATH = "/v1/recommend"
# Distinct shoppers wanted per run, and the shortest segment worth a process start.
TARGET_SHOPPERS = 240
MIN_SEGMENT_S = 5.0
LATE_S = 0.005
MAX_LANE_RPS = 50.0
_REQUESTS_RE = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
    r"(\d+) failed, (\d+) errored, (\d+) timeout"
)
_METRIC_RE = re.compile(r"^fairshelf_requests_total\{([^}]*)\}\s+([0-9.eE+-]+)$")


def available() -> bool:
    """Whether ``h2load`` is on PATH."""
    return shutil.which("h2load") is not None


@dataclass(frozen=True)
class Target:
    """What one request is: URL, headers, and the body for a given shopper."""

    kind: str  # "grpc" or "http"
    url: str
    headers: tuple[str, ...]
    k: int

    def body(self, user: str) -> bytes:
        """The request body for ``user``: a gRPC frame or the JSON of ``/v1/recommend``."""
        if self.kind == "grpc":
            from proto.fairshelf.v1 import recommendations_pb2

            msg = recommendations_pb2.RecommendRequest(user_id=user, k=self.k)
            payload = msg.SerializeToString()
            return b"\x00" + len(payload).to_bytes(4, "big") + payload
        return json.dumps({"user_id": user, "k": self.k}).encode()

    def base_args(self) -> list[str]:
        """h2load flags shared by every process of a run."""
        args = [] if self.kind == "grpc" else ["--h1"]
        for header in self.headers:
            args += ["-H", header]
        return args


def make_target(kind: str, addr: str, api_key: str, k: int) -> Target:
    """A :class:`Target` for ``grpc`` (``host:port``) or ``http`` (``http://host:port``)."""
    key = (f"x-api-key: {api_key}",) if api_key else ()
    if kind == "grpc":
        return Target(
            "grpc",
            f"http://{addr}{GRPC_PATH}",
            ("content-type: application/grpc", "te: trailers", *key),
            k,
        )
    return Target("http", addr.rstrip("/") + HTTP_PATH, ("content-type: application/json", *key), k)


@dataclass
class _Proc:
    lane: int
    popen: subprocess.Popen[bytes]
    log: Path
    out: Path
    rps: float | None


@dataclass
class _Tally:
    started: int = 0
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    errored: int = 0
    timeout: int = 0
    rows: list[np.ndarray] = field(default_factory=list)
    lane_span: dict[int, tuple[int, int]] = field(default_factory=dict)
    late: int = 0

    def add(self, proc: _Proc) -> None:
        text = proc.out.read_text(errors="replace")
        m = _REQUESTS_RE.search(text)
        if m is None:
            raise RuntimeError(f"h2load printed no summary:\n{text[-2000:]}")
        _total, started, done, ok, failed, errored, timeout = map(int, m.groups())
        self.started += started
        self.done += done
        self.succeeded += ok
        self.failed += failed
        self.errored += errored
        self.timeout += timeout
        rows = np.loadtxt(proc.log, dtype=np.int64, ndmin=2) if proc.log.stat().st_size else None
        if rows is None or rows.size == 0:
            return
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        self.rows.append(rows[:, :3])
        # The span (first send, last answer) over which this lane had load running.
        first, last = int(rows[0, 0]), int((rows[:, 0] + rows[:, 2]).max())
        old = self.lane_span.get(proc.lane, (first, last))
        self.lane_span[proc.lane] = (min(old[0], first), max(old[1], last))
        if proc.rps:
            # Slot n of this process is n/rps after its first send.
            slots = rows[0, 0] + np.arange(len(rows)) * (1e6 / proc.rps)
            self.late += int(np.count_nonzero(rows[:, 0] - slots > LATE_S * 1e6))


def _segment_len(lanes: int, duration: float) -> float:
    segments = max(1, min(math.ceil(TARGET_SHOPPERS / lanes), int(duration // MIN_SEGMENT_S)))
    return duration / segments


def _lane_segments(duration: float, seg: float, frac: float) -> list[tuple[float, float]]:
    """Segments of one lane over ``[0, duration)``: cut points shifted by ``frac`` of a segment.

    Lanes get different shifts, so their processes restart at spread-out moments instead of
    all at once (an h2load start costs about 10 ms of CPU).
    """
    cuts = [0.0]
    t = seg * (0.5 + frac)
    while t < duration - seg / 2:
        cuts.append(t)
        t += seg
    cuts.append(duration)
    return list(itertools.pairwise(cuts))


def _run_lanes(
    target: Target,
    users: list[str],
    lanes: int,
    duration: float,
    work: Path,
    lane_rps: float | None,
    streams: int,
) -> tuple[_Tally, int]:
    seg = _segment_len(lanes, duration)
    # Lane starts spread over up to 2 s (open loop) or 0.5 s (closed loop): starting every
    # h2load at once would burn a burst of CPU the server needs.
    spread = min(2.0 if lane_rps else 0.5, duration / 5)
    plan: list[tuple[float, int, int, float, float]] = []  # (launch, lane, n, seg_start, end)
    for lane in range(lanes):
        if lane_rps:
            # Open loop: lane i's slots are i/R apart from lane i-1's (R = lanes * lane_rps);
            # whole slots are skipped to spread the starts, and made up at the end.
            period = 1.0 / lane_rps
            shift = lane * period / lanes + int(lane / lanes * spread / period) * period
        else:
            shift = lane * spread / lanes
        for a, b in _lane_segments(duration, seg, lane / lanes):
            n = round((lane_rps or 0.0) * b) - round((lane_rps or 0.0) * a)
            if lane_rps and n == 0:
                continue
            plan.append((shift + a, lane, n, a, b))
    plan.sort()
    rng = random.Random(7)
    picks = rng.sample(users, min(len(users), len(plan)))
    tally = _Tally()
    running: list[_Proc] = []
    base = target.base_args()
    start = time.monotonic()
    for idx, (launch, lane, n, a, b) in enumerate(plan):
        user = picks[idx % len(picks)]
        body = work / f"body-{idx}.bin"
        body.write_bytes(target.body(user))
        log, out = work / f"log-{idx}.tsv", work / f"out-{idx}.txt"
        args = ["h2load", *base, "-c", "1", "-m", str(streams), "-N", "10s"]
        if lane_rps is not None:
            # A request count, not -D: h2load cuts off whatever is in flight when -D ends,
            # while with -n it waits for every answer (up to the 10 s inactivity limit).
            args += ["--rps", f"{lane_rps:g}", "-n", str(n)]
        else:
            args += ["-D", f"{(b - a) * 1000:.0f}ms"]
        args += ["-d", str(body), "--log-file", str(log), target.url]
        delay = start + launch - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with out.open("wb") as sink:
            popen = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
        running.append(_Proc(lane, popen, log, out, lane_rps))
        # Reap finished processes as we go, so at most about a lane's worth stay around.
        still: list[_Proc] = []
        for proc in running:
            if proc.popen.poll() is None:
                still.append(proc)
            else:
                tally.add(proc)
        running = still
    for proc in running:
        proc.popen.wait(timeout=duration + 60)
        tally.add(proc)
    return tally, len(picks)


_BUCKET_RE = re.compile(r"^fairshelf_request_seconds_bucket\{([^}]*)\}\s+([0-9.eE+-]+)$")
_SUM_RE = re.compile(r"^fairshelf_request_seconds_sum\{([^}]*)\}\s+([0-9.eE+-]+)$")

Scrape = tuple[dict[str, float], dict[float, float], float]


def _scrape(metrics_url: str | None, transport: str) -> Scrape | None:
    """The server's Recommend calls per status code, the cumulative counts of its Recommend
    time histogram (upper bound in s -> calls) and the histogram's sum (s); None without a
    metrics URL.

    That time runs from the service receiving the call to its answer being built: no
    transport, no waiting for the event loop or for a CPU.
    """
    if not metrics_url:
        return None
    import httpx

    text = httpx.get(metrics_url.rstrip("/") + "/metrics", timeout=10).text
    counts: dict[str, float] = {}
    buckets: dict[float, float] = {}
    seconds = 0.0
    for line in text.splitlines():
        m = _METRIC_RE.match(line) or _BUCKET_RE.match(line) or _SUM_RE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("operation") != "Recommend" or labels.get("transport") != transport:
            continue
        if line.startswith("fairshelf_request_seconds_sum"):
            seconds += float(m.group(2))
        elif "le" in labels:
            le = float(labels["le"])  # "+Inf" parses as inf
            buckets[le] = buckets.get(le, 0.0) + float(m.group(2))
        else:
            code = labels.get("code", "?")
            counts[code] = counts.get(code, 0.0) + float(m.group(2))
    return counts, buckets, seconds


def _service_p99_le_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The histogram bucket bound (ms) under which 99% of this phase's calls were served."""
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in after}
    total = delta.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for le in sorted(delta):
        if delta[le] >= 0.99 * total:
            return le * 1000.0
    return None


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _pct(lat_ms: np.ndarray, q: float) -> float:
    return round(float(np.percentile(lat_ms, q)), 3) if lat_ms.size else float("nan")


def run(
    target: Target,
    users: list[str],
    duration: float,
    rate: float = 0.0,
    concurrency: int = 0,
    metrics_url: str | None = None,
) -> dict[str, Any]:
    """One load phase; returns loadgen's summary plus h2load and server-side counts.

    Parameters
    ----------
    target:
        What to call (see :func:`make_target`).
    users:
        Shopper ids; a few hundred of them get a segment each.
    duration:
        Seconds of load.
    rate:
        Open loop at this many requests/s when ``concurrency`` is 0.
    concurrency:
        Closed loop with this many requests in flight when > 0.
    metrics_url:
        ``http://host:port`` of the server's ``/metrics``; None for servers without one
        (the naive baseline), which leaves gRPC-level errors unseen (HTTP statuses are seen).

    Raises
    ------
    RuntimeError
        An h2load process printed no summary (it could not start or connect).
    """
    self0, h2load0 = _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        work = Path(tmp)
        # Warm-up: connections, caches, lazy imports on the server (loadgen does 50 calls).
        warm = work / "warm.bin"
        warm.write_bytes(target.body(users[0]))
        subprocess.run(
            ["h2load", *target.base_args(), "-n", "50", "-c", "1", "-d", str(warm), target.url],
            check=True,
            capture_output=True,
        )
        before = _scrape(metrics_url, target.kind)
        if concurrency > 0:
            tally, shoppers = _run_lanes(target, users, concurrency, duration, work, None, 1)
            lanes = concurrency
        else:
            # At most MAX_LANE_RPS per lane (h2load's send timer ticks about every 10 ms, so a
            # faster lane sends in bursts); HTTP/1.1 needs many connections besides.
            lanes = max(8 if target.kind == "grpc" else 64, math.ceil(rate / MAX_LANE_RPS))
            streams = 64 if target.kind == "grpc" else 1
            tally, shoppers = _run_lanes(
                target, users, lanes, duration, work, rate / lanes, streams
            )
        after = _scrape(metrics_url, target.kind)
    rows = np.concatenate(tally.rows) if tally.rows else np.zeros((0, 3), np.int64)
    good = rows[:, 1] == 200
    lat_ms = rows[good, 2] / 1000.0
    # Throughput over the window in which every lane had load running (lanes start and stop
    # a little apart): 2xx answers that ended inside it, per second.
    spans = list(tally.lane_span.values())
    lo = max((a for a, _ in spans), default=0)
    hi = min((b for _, b in spans), default=0)
    elapsed = (hi - lo) / 1e6
    ends = rows[good, 0] + rows[good, 2]
    in_window = int(np.count_nonzero((ends >= lo) & (ends <= hi)))
    # h2load's "failed" covers non-2xx answers, errored streams (status -1) and timeouts:
    # everything done and not answered 2xx. Requests still in flight when a closed-loop
    # segment's -D ends are cut off, not failed (open-loop segments use -n and finish all).
    client_errors = tally.done - tally.succeeded
    server: dict[str, Any] | None = None
    server_errors = 0
    if before is not None and after is not None:
        (codes0, buckets0, secs0), (codes1, buckets1, secs1) = before, after
        delta = {c: codes1.get(c, 0.0) - codes0.get(c, 0.0) for c in codes1}
        served_ok = int(delta.get("OK", 0.0))
        not_ok = int(sum(v for c, v in delta.items() if c != "OK"))
        # 200 answers the service never counted were refused before it (gRPC limits).
        uncounted = max(0, int(np.count_nonzero(good)) - served_ok - not_ok)
        server_errors = not_ok + (uncounted if target.kind == "grpc" else 0)
        server = {"ok": served_ok, "errors": not_ok, "uncounted_200": uncounted, "codes": delta}
        server["service_p99_le_ms"] = _service_p99_le_ms(buckets0, buckets1)
        # The service's mean time per call in the server (wall time, from receiving the call
        # to its answer built), to set against the same call's cost in process.
        timed = buckets1.get(float("inf"), 0.0) - buckets0.get(float("inf"), 0.0)
        server["service_mean_ms"] = 1000.0 * (secs1 - secs0) / timed if timed > 0 else None
    if target.kind == "grpc":
        errors = client_errors + server_errors
    else:
        errors = max(client_errors, server_errors)
    ok = max(0, int(np.count_nonzero(good)) - (server_errors if target.kind == "grpc" else 0))
    # gRPC: the errors the server reported hide among the 200s; take their share out.
    window_ok = in_window * (ok / np.count_nonzero(good)) if np.count_nonzero(good) else 0.0
    return {
        "sent": tally.started,
        "ok": ok,
        "errors": errors,
        "late": tally.late,
        "seconds": round(elapsed, 3),
        "rps": round(window_ok / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": _pct(lat_ms, 50),
        "p90_ms": _pct(lat_ms, 90),
        "p99_ms": _pct(lat_ms, 99),
        "p999_ms": _pct(lat_ms, 99.9),
        "max_ms": round(float(lat_ms.max()), 3) if lat_ms.size else float("nan"),
        "client": "h2load",
        # CPU of this phase: the h2load processes, and this driver (scheduling, parsing logs).
        "h2load_cpu_s": round(_cpu_s(resource.RUSAGE_CHILDREN) - h2load0, 3),
        "driver_cpu_s": round(_cpu_s(resource.RUSAGE_SELF) - self0, 3),
        "lanes": lanes,
        "shoppers": shoppers,
        "h2load": {
            "started": tally.started,
            "done": tally.done,
            "succeeded": tally.succeeded,
            "failed": tally.failed,
            "errored": tally.errored,
            "timeout": tally.timeout,
            "non_200": int(np.count_nonzero(~good)),
            "cut_off": tally.started - tally.done,
        },
        "server": server,
    }


def main(argv: list[str] | None = None) -> None:
    """Run one load test and print its summary as a JSON line on stdout."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(p)
    p.add_argument("--metrics-url", default=None, help="http://host:port serving /metrics")
    args = p.parse_args(argv)
    users = [u for u in Path(args.users).read_text().splitlines() if u]
    target = make_target(args.target, args.addr, args.api_key, args.k)
    result = run(target, users, args.duration, args.rate, args.concurrency, args.metrics_url)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
