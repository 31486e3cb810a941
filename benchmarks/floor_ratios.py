"""fairshelf's serving figures as ratios to the transport floor measured in the same run.

Absolute rates on a shared host move by a factor of two within minutes (other guests take the
CPU or evict the caches), so a bar in calls per second is met or missed with the host. The
floor (``floor_server.py``: the same servers, worker count and load client, answering a
prebuilt response) is measured in rounds alternating with fairshelf's, so both see the host
in the same states.

The limit: a fairshelf call cannot cost less server CPU than the floor's call plus the
service's own work (the in-process Recommend: auth, stores, recommender, per-call metrics,
measured without a transport), so with the CPU its workers got, fairshelf could serve at
most ``rate * cpu / (floor_cpu + service_cpu)`` calls per second, and its share of that limit
is ``(floor_cpu + service_cpu) / cpu`` (CPU per call, server processes only). What it falls
short by is what the adapters (request and response conversion, metadata and headers, the
event loop's work beyond the floor's) and the service's slowdown inside a busy server cost.

The service's CPU is measured in process on a quiet host (``service_under_load.py``: the
service as the server builds it, its exposure writer's CPU included), in windows alternating
with windows where the floor serves as many calls per second as fairshelf sustained in its
closed loop; the table prints the limit with the loaded figure too, on a row of its own. The
bar stays on the quiet one: the loaded rows say how much of the distance is the host's caches
and cores, not fairshelf's code.

The same limit from rates, ``W / (W / F + s)`` (W workers, F the floor's rate, s the
in-process service CPU), is printed beside it: it assumes the workers get every core for the
service's share, which a host busy with other work does not give, so it reads low there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

THROUGHPUT_BAR = 0.85
P99_BAR = 1.5


def limit_rps(floor_rps: float, service_cpu_ms: float, workers: int) -> float:
    """The limit from rates: calls/s if a call cost the floor's time plus the service's CPU.

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
        timed = [(r["server"].get("service_mean_ms"), r["server"]["ok"]) for r in rounds]
        weight = sum(n for m, n in timed if m is not None)
        server["service_mean_ms"] = (
            sum(m * n for m, n in timed if m is not None) / weight if weight else None
        )
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
    """Limits and ratios per transport, and the open-loop gRPC p99 against the floor's.

    ``served`` holds the load phases of :func:`serve_bench.serve_and_load` (``grpc``,
    ``grpc_max``, ``http_max`` and their ``floor_*`` twins). Per transport: ``ratio`` and
    ``limit_rps`` from CPU per call (the bar's), ``rate_ratio`` and ``rate_limit_rps`` from
    the rates.
    """
    workers = int(served.get("workers", 1))
    out: dict[str, dict[str, float]] = {}
    for name in ("grpc", "http"):
        floor, fair = served[f"floor_{name}_max"], served[f"{name}_max"]
        rps = float(fair["rps"])
        fcpu, cpu = _cpu_per_call(floor) or 0.0, _cpu_per_call(fair) or 0.0
        ratio = (fcpu + service_cpu_ms) / cpu if cpu else 0.0
        rate_limit = limit_rps(float(floor["rps"]), service_cpu_ms, workers)
        out[name] = {
            "floor_rps": float(floor["rps"]),
            "rps": rps,
            "floor_cpu_ms": fcpu,
            "cpu_ms": cpu,
            "ratio": ratio,
            "limit_rps": rps / ratio if ratio else 0.0,
            "rate_limit_rps": rate_limit,
            "rate_ratio": rps / rate_limit if rate_limit else 0.0,
        }
    floor_p99, p99 = float(served["floor_grpc"]["p99_ms"]), float(served["grpc"]["p99_ms"])
    out["grpc_p99"] = {
        "floor_p99_ms": floor_p99,
        "p99_ms": p99,
        "ratio": p99 / floor_p99 if floor_p99 else float("inf"),
    }
    return out


def service_cpu(inproc: dict[str, Any]) -> float:
    """The service's CPU per call for the limit (ms): the in-process service measured quiet,
    as the server runs it (exposure writer included) when that was measured, else the
    in-process step's thread CPU."""
    loaded = inproc.get("service_cpu_ms") or {}
    return float(loaded.get("quiet", inproc["recommend_cpu_ms"]))


def loaded_rows(served: dict[str, Any], inproc: dict[str, Any]) -> list[str]:
    """Rows of the same limit with the service's CPU measured in process while the floor
    served fairshelf's closed-loop rate (HTTP, gRPC), when that was measured."""
    loaded = inproc.get("service_cpu_ms") or {}
    if not all(k in loaded for k in ("quiet", "http", "grpc")):
        return []
    quiet = float(loaded["quiet"])
    rates = inproc.get("service_load_rps") or {}
    rows = []
    for name, label in (("grpc", "gRPC"), ("http", "HTTP")):
        under = float(loaded[name])
        x = ratios(served, under)[name]
        rate = f" at {float(rates[name]):,.0f}/s" if name in rates else ""
        rows.append(
            f"| {label}: same limit, service CPU measured while the floor served {label}"
            f"{rate} ({under:.3f} ms against {quiet:.3f} ms quiet, {under / quiet:.2f}x) "
            f"| - | - | {x['limit_rps']:,.0f}/s | {x['ratio']:.2f} | - | - | - |"
        )
    return rows


def render_ratios(served: dict[str, Any], inproc: dict[str, Any]) -> str:
    """The Markdown table of the floor, the limit and fairshelf's ratios to them, and where
    the CPU per call above the limit went."""
    cpu_ms = service_cpu(inproc)
    how = (
        "mean over a quiet host's windows, every thread of the process, exposure writer included"
        if "service_cpu_ms" in inproc
        else "mean thread CPU"
    )
    p50, _ = inproc["recommend"]
    workers = int(served.get("workers", 1))
    r = ratios(served, cpu_ms)
    rounds = served.get("floor_http_max", {}).get("rounds", 1)
    rows = [
        f"Transport floor, same run: empty servers answering a prebuilt 20-item response "
        f"({workers} worker process(es), same client; {rounds} rounds alternating with "
        f"fairshelf's per phase). In-process service CPU per Recommend {cpu_ms:.3f} ms "
        f"({how}; p50 wall time {p50:.3f} ms). Limit = the rate fairshelf would reach with the "
        f"CPU it got if a call cost the floor's CPU plus the service's; beside it the limit "
        f"from rates, W / (W / floor rate + service CPU), W = {workers}.",
        "",
        "| measurement | floor | fairshelf | limit | fairshelf / limit | from rates | bar "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for name, label in (("grpc", "gRPC"), ("http", "HTTP")):
        x = r[name]
        fair = served[f"{name}_max"]
        floor = served[f"floor_{name}_max"]
        steal = f"; steal {fair.get('steal_pct', 0):.1f}% / {floor.get('steal_pct', 0):.1f}%"
        rows.append(
            f"| {label} Recommend, closed loop x{fair.get('lanes', '?')}{steal} "
            f"| {x['floor_rps']:,.0f}/s, {x['floor_cpu_ms']:.3f} ms CPU/call "
            f"| {x['rps']:,.0f}/s, {x['cpu_ms']:.3f} ms CPU/call "
            f"| {x['limit_rps']:,.0f}/s | **{x['ratio']:.2f}** "
            f"| {x['rate_limit_rps']:,.0f}/s, {x['rate_ratio']:.2f} | >= {THROUGHPUT_BAR} "
            f"| {_verdict(x['ratio'] >= THROUGHPUT_BAR)} |"
        )
        over = x["cpu_ms"] - x["floor_cpu_ms"] - cpu_ms
        note = (
            f"- {label}, server CPU per call: floor {x['floor_cpu_ms']:.3f} ms + service in "
            f"process {cpu_ms:.3f} ms = {x['floor_cpu_ms'] + cpu_ms:.3f} ms; fairshelf "
            f"{x['cpu_ms']:.3f} ms, {over:+.3f} ms more"
        )
        mean = (fair.get("server") or {}).get("service_mean_ms")
        if mean is not None:
            note += (
                f"; in the server the service took {mean:.3f} ms per call (mean wall time, its "
                f"histogram), {mean - cpu_ms:+.3f} ms against in process"
            )
        notes.append(note + ".")
    rows += loaded_rows(served, inproc)
    g = r["grpc_p99"]
    fg, sg = served["floor_grpc"], served["grpc"]
    rows.append(
        f"| gRPC Recommend p99, open loop {sg['rps']:,.0f}/s achieved (floor {fg['rps']:,.0f}/s)"
        f"; steal {sg.get('steal_pct', 0):.1f}% / {fg.get('steal_pct', 0):.1f}% "
        f"| {g['floor_p99_ms']:.2f} ms (p50 {fg['p50_ms']:.2f}) "
        f"| {g['p99_ms']:.2f} ms (p50 {sg['p50_ms']:.2f}) | - "
        f"| **{g['ratio']:.2f}x** floor | - | <= {P99_BAR}x "
        f"| {_verdict(g['ratio'] <= P99_BAR)} |"
    )
    return "\n".join([*rows, "", *notes])
