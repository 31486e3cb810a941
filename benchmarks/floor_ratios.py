"""fairshelf's serving figures as ratios to the transport floor measured in the same run.

Absolute rates on a shared host move by a factor of two within minutes (other guests take the
CPU or evict the caches), so a bar in calls per second is met or missed with the host. The
floor (``floor_server.py``: the same servers, worker count and load client, answering a
prebuilt response) moves with it, and so does the in-process service, so the ratios below
compare like with like.

The limit. With W workers busy, a call on the floor takes W / F seconds of a worker (F: the
floor's closed-loop rate; that time includes the worker's share of the load client's CPU on
the same cores). fairshelf's call adds the service's own CPU s (the in-process Recommend,
auth, stores and recommender, measured without a transport), so with no adapter cost at all
it would serve ``limit = W / (W / F + s)`` calls per second. The bar is a share of that limit;
whatever fairshelf falls short by is what its adapters (request and response conversion,
metadata and header handling, per-call metrics and logging) cost over the bare transport.
"""

from __future__ import annotations

from typing import Any

import numpy as np

THROUGHPUT_BAR = 0.85
P99_BAR = 1.5


def limit_rps(floor_rps: float, service_cpu_ms: float, workers: int) -> float:
    """fairshelf's throughput with adapters that cost nothing over the floor (calls/s).

    Parameters
    ----------
    floor_rps:
        The floor's closed-loop throughput, same workers and client.
    service_cpu_ms:
        CPU of one in-process service call (ms).
    workers:
        Server processes (each serves one call at a time).
    """
    if floor_rps <= 0:
        return 0.0
    return workers / (workers / floor_rps + service_cpu_ms / 1000.0)


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One closed-loop result from several rounds of the same load on the same server.

    Counts and CPU seconds add up; the rate is over the rounds' measured windows together;
    steal is their time-weighted mean; each latency percentile is the median of the rounds'
    (their samples are not kept, so no exact percentile over all of them exists; the median
    round is the one a brief burst of other work on the host moves least).
    """
    first = rounds[0]
    out = dict(first)
    seconds = sum(float(r["seconds"]) for r in rounds)
    out["seconds"] = seconds
    out["rps"] = (
        sum(float(r["rps"]) * float(r["seconds"]) for r in rounds) / seconds if seconds else 0.0
    )
    for key in ("sent", "ok", "errors", "late", "server_cpu_s", "client_cpu_s", "h2load_cpu_s"):
        if key in first:
            out[key] = sum(r[key] for r in rounds)
    for key in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"):
        if key in first:
            out[key] = float(np.median([float(r[key]) for r in rounds]))
    if seconds:
        out["steal_pct"] = (
            sum(float(r.get("steal_pct", 0.0)) * float(r["seconds"]) for r in rounds) / seconds
        )
    if isinstance(first.get("h2load"), dict):
        out["h2load"] = {k: sum(r["h2load"][k] for r in rounds) for k in first["h2load"]}
    if all(isinstance(r.get("server"), dict) for r in rounds):
        server = dict(first["server"])
        for key in ("ok", "errors", "uncounted_200"):
            server[key] = sum(r["server"][key] for r in rounds)
        bounds = [r["server"].get("service_p99_le_ms") for r in rounds]
        server["service_p99_le_ms"] = max((b for b in bounds if b is not None), default=None)
        out["server"] = server
    out["rounds"] = len(rounds)
    return out


def _cpu_per_call(r: dict[str, Any]) -> float | None:
    if r.get("server_cpu_s") and r.get("ok"):
        return 1000.0 * float(r["server_cpu_s"]) / float(r["ok"])
    return None


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ratios(served: dict[str, Any], service_cpu_ms: float) -> dict[str, dict[str, float]]:
    """Limit and ratio per transport, and the open-loop gRPC p99 against the floor's.

    ``served`` holds the load phases of :func:`serve_bench.serve_and_load` (``grpc``,
    ``grpc_max``, ``http_max`` and their ``floor_*`` twins).
    """
    workers = int(served.get("workers", 1))
    out: dict[str, dict[str, float]] = {}
    for name in ("grpc", "http"):
        floor, fair = served[f"floor_{name}_max"], served[f"{name}_max"]
        limit = limit_rps(float(floor["rps"]), service_cpu_ms, workers)
        out[name] = {
            "floor_rps": float(floor["rps"]),
            "rps": float(fair["rps"]),
            "limit_rps": limit,
            "ratio": float(fair["rps"]) / limit if limit else 0.0,
        }
    floor_p99, p99 = float(served["floor_grpc"]["p99_ms"]), float(served["grpc"]["p99_ms"])
    out["grpc_p99"] = {
        "floor_p99_ms": floor_p99,
        "p99_ms": p99,
        "ratio": p99 / floor_p99 if floor_p99 else float("inf"),
    }
    return out


def render_ratios(served: dict[str, Any], inproc: dict[str, Any]) -> str:
    """The Markdown table of the floor, the limit and fairshelf's ratios to them."""
    cpu_ms = float(inproc["recommend_cpu_ms"])
    p50, _ = inproc["recommend"]
    workers = int(served.get("workers", 1))
    r = ratios(served, cpu_ms)
    rounds = served.get("floor_http_max", {}).get("rounds", 1)
    rows = [
        f"Transport floor, same run: empty servers answering a prebuilt 20-item response "
        f"({workers} worker process(es), same client; closed loops in {rounds} rounds "
        f"alternating with fairshelf's). In-process service CPU per Recommend {cpu_ms:.3f} ms "
        f"(mean; p50 wall time {p50:.3f} ms). Limit = W / (W / floor + service CPU), "
        f"W = {workers}. Server CPU per call: fairshelf's, less the floor's and the "
        f"in-process service's, is what the adapters and the service's slowdown in the "
        f"server cost.",
        "",
        "| measurement | floor | fairshelf | limit | fairshelf / limit | bar | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (("grpc", "gRPC"), ("http", "HTTP")):
        x = r[name]
        floor, fair = served[f"floor_{name}_max"], served[f"{name}_max"]
        fcpu, cpu = _cpu_per_call(floor), _cpu_per_call(fair)
        fnote = f" ({fcpu:.3f} ms server CPU/call)" if fcpu is not None else ""
        note = f" ({cpu:.3f} ms server CPU/call" if cpu is not None else ""
        if cpu is not None and fcpu is not None:
            note += f"; {cpu - fcpu - cpu_ms:+.3f} ms over floor + service"
        note += ")" if note else ""
        steal = f"; steal {fair.get('steal_pct', 0):.1f}% / {floor.get('steal_pct', 0):.1f}%"
        rows.append(
            f"| {label} Recommend, closed loop x{fair.get('lanes', '?')}{steal} "
            f"| {x['floor_rps']:,.0f}/s{fnote} | {x['rps']:,.0f}/s{note} "
            f"| {x['limit_rps']:,.0f}/s | **{x['ratio']:.2f}** | >= {THROUGHPUT_BAR} "
            f"| {_verdict(x['ratio'] >= THROUGHPUT_BAR)} |"
        )
    g = r["grpc_p99"]
    fg, sg = served["floor_grpc"], served["grpc"]
    rows.append(
        f"| gRPC Recommend p99, open loop {sg['rps']:,.0f}/s achieved (floor {fg['rps']:,.0f}/s)"
        f"; steal {sg.get('steal_pct', 0):.1f}% / {fg.get('steal_pct', 0):.1f}% "
        f"| {g['floor_p99_ms']:.2f} ms (p50 {fg['p50_ms']:.2f}) "
        f"| {g['p99_ms']:.2f} ms (p50 {sg['p50_ms']:.2f}) | - "
        f"| **{g['ratio']:.2f}x** floor | <= {P99_BAR}x "
        f"| {_verdict(g['ratio'] <= P99_BAR)} |"
    )
    return "\n".join(rows)
