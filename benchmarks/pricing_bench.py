"""Pricing benchmarks: elasticity recovery, simulator vs oracle, 1M-quote guardrail audit, latency.

Run ``python benchmarks/pricing_bench.py`` (about five minutes on two cores; ``--store DIR``
reuses a generated synthetic store). It prints one Markdown table with each bar of issue 5 and
writes the same numbers as JSON when ``--json`` is given.

The 1,000,000 quotes are checked by :class:`pricing.guardrail_audit.GuardrailAuditor`, which
resolves and checks the guardrails with its own code, not with the engine's enforcement.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from pricing.catalog import PricingCatalog
from pricing.context import PublicContext
from pricing.elasticity import fit_elasticities, observations_from_events
from pricing.engine import PricingEngine
from pricing.fairness.guard import FairQuoteService
from pricing.fairness.shopper import Shopper
from pricing.guardrail_audit import GuardrailAuditor, ServedPrice
from pricing.guardrail_rules import Guardrail
from pricing.guardrails import GuardrailSet
from pricing.policies.registry import load_policy
from pricing.simulator import (
    DEFAULT_SIM_GUARDRAILS,
    SimulationConfig,
    simulate,
    simulate_switchback,
    truth_from_store,
)
from pricing.switchback import Switchback
from serving.reload import settle_heap
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.quote_store import QuoteStore
from training.data.synthetic import SyntheticStore, generate_store, load_store

# The simulator's own defaults, so the benchmark measures what `fairshelf simulate` runs.
SIM_GUARDRAILS = DEFAULT_SIM_GUARDRAILS

# The paced latency run: 1,000 requests of 20 items per second is 20,000 quotes per second,
# well within what the quote log stores on the two-core host. A sleep overshoots by tens of
# microseconds, so the last SLEEP_SLACK seconds before a request are waited out awake.
PACED_RATE = 1000.0
SLEEP_SLACK = 0.0002


def bench_elasticity(store: SyntheticStore) -> dict[str, Any]:
    """Recovery of the true elasticities, and the category prior on a thin 21-day window."""
    truth = store.truth_items.set_index("item_id")["true_elasticity"]
    obs = observations_from_events(store.events, store.items, exposure_event="view")
    t0 = time.perf_counter()
    fit = fit_elasticities(obs)
    fit_s = time.perf_counter() - t0
    fit["err"] = (fit["elasticity"] - fit["item_id"].map(truth)).abs()
    big = fit[fit["n_obs"] >= 200]
    start = store.events["timestamp"].min()
    early = store.events[store.events["timestamp"] < start + pd.Timedelta(days=21)]
    thin_fit = fit_elasticities(
        observations_from_events(early, store.items, exposure_event="view"), min_obs=30
    )
    thin_fit["err"] = (thin_fit["elasticity"] - thin_fit["item_id"].map(truth)).abs()
    thin_fit["raw_err"] = (thin_fit["raw_elasticity"] - thin_fit["item_id"].map(truth)).abs()
    thin = thin_fit[thin_fit["source"] == "category"]
    return {
        "items": len(fit),
        "items_200": len(big),
        "mae_200_median": float(big["err"].median()),
        "fit_seconds": fit_s,
        "thin_items": len(thin),
        "thin_prior_median_err": float(thin["err"].median()) if len(thin) else float("nan"),
        "thin_raw_median_err": float(thin["raw_err"].median()) if len(thin) else float("nan"),
    }


def bench_simulator(store: SyntheticStore, seed: int) -> dict[str, Any]:
    """8 weeks from elasticities 30 % off, against the oracle, under the same guardrails."""
    truth = truth_from_store(store.items, store.truth_items, store.events)
    res = simulate(truth, SIM_GUARDRAILS, SimulationConfig(weeks=8, start_error=0.3, seed=seed))
    el = res.elasticities
    first, last = el[el["week"] == 0], el[el["week"] == el["week"].max()]
    return {
        "revenue_ratio_last4": res.revenue_ratio(4),
        "margin_ratio_last4": res.margin_ratio(4),
        "quotes": res.quotes,
        "violations": sum(a.total_violations for a in res.audits.values()),
        "start_mae": float((first["estimate"] - first["true_elasticity"]).abs().median()),
        "end_mae": float((last["estimate"] - last["true_elasticity"]).abs().median()),
    }


def bench_switchback(store: SyntheticStore, seed: int) -> dict[str, Any]:
    """Static vs elasticity-optimal, alternating by day for 8 weeks, analysed with intervals."""
    truth = truth_from_store(store.items, store.truth_items, store.events)
    table = simulate_switchback(
        truth, SIM_GUARDRAILS, ["static", "elasticity_optimal"], weeks=8, seed=seed
    )
    row = table.set_index("policy").to_dict("index")["elasticity_optimal"]
    return {str(k): float(v) for k, v in row.items()}


def _random_guardrails(rng: random.Random, categories: list[str], items: list[str]) -> GuardrailSet:
    gs = GuardrailSet().with_rule(
        Guardrail(
            "global",
            min_ratio=0.5,
            max_ratio=2.0,
            min_margin=0.0,
            max_change_pct=0.15,
            price_ending=0.99,
        )
    )
    for cat in categories:
        lo = rng.uniform(0.6, 0.9)
        gs = gs.with_rule(
            Guardrail(
                "category",
                cat,
                min_ratio=lo,
                max_ratio=rng.uniform(1.05, 1.6),
                min_margin=rng.choice([None, 0.05, 0.2]),
                max_change_pct=rng.choice([None, 0.05, 0.1, 0.25]),
                price_ending=rng.choice([None, 0.95, 0.49, 0.0]),
                objective=rng.choice(["revenue", "margin", None]),
            )
        )
    for item in rng.sample(items, k=len(items) // 10):
        gs = gs.with_rule(
            Guardrail(
                "item",
                item,
                floor=rng.choice([None, 1.0]),
                max_change_pct=rng.choice([None, 0.03, 0.2]),
                price_ending=rng.choice([None, 0.99]),
            )
        )
    return gs


def bench_million_quotes(n_items: int, n_epochs: int, seed: int) -> dict[str, Any]:
    """Price ``n_items x n_epochs`` quotes under random guardrails and audit every one."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    cats = [f"dept{d}/aisle{a}" for d in range(4) for a in range(3)]
    ids = [f"Q{i:05d}" for i in range(n_items)]
    base = np.round(nrng.uniform(1.0, 300.0, n_items), 2)
    items = pd.DataFrame(
        {
            "item_id": ids,
            "category": [cats[i % len(cats)] for i in range(n_items)],
            "base_price": base,
            "unit_cost": np.round(base * nrng.uniform(0.3, 0.95, n_items), 2),
            "stock": nrng.integers(0, 500, n_items),
            "days_left": nrng.uniform(1, 60, n_items),
        }
    )
    elast = pd.DataFrame(
        {"item_id": ids, "elasticity": nrng.uniform(-4.0, -0.2, n_items), "stderr": 0.2}
    )
    catalog = PricingCatalog.from_frames(items, elast)
    guards = _random_guardrails(rng, cats, ids)
    # Several policies alternating hour by hour, fed erratic competitor prices, push prices
    # against every bound.
    schedule = Switchback(
        [
            load_policy("elasticity_optimal"),
            load_policy("competitor_match"),
            load_policy("markdown"),
            load_policy("static"),
        ],
        seed=seed,
        epochs_per_slot=1,
    )
    engine = PricingEngine(catalog, guards, schedule)
    auditor = GuardrailAuditor(guards.rules.values())
    cat_of = items["category"].tolist()
    cost = items["unit_cost"].tolist()
    base_l = base.tolist()
    start = datetime(2026, 5, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    for e in tqdm(range(n_epochs), desc="1M quotes", unit="epoch", file=sys.stderr):
        comp = nrng.uniform(0.3, 3.0, n_items) * base
        ctx = PublicContext(
            at=start + timedelta(hours=e), competitor_prices=dict(zip(ids, comp, strict=True))
        )
        decisions = engine.decide(ids, ctx)
        s = decisions[0].epoch_start.timestamp()
        for i, d in enumerate(decisions):
            auditor.check(ServedPrice(ids[i], cat_of[i], base_l[i], cost[i], s, d.final_price))
    elapsed = time.perf_counter() - t0
    r = auditor.result
    return {
        "quotes": r.checked,
        "violations": r.total_violations,
        "by_rule": dict(r.violations),
        "examples": r.examples,
        "conflicts": r.conflicts,
        "seconds": elapsed,
    }


def _pcts(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``seconds``, in milliseconds."""
    ms = np.array(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def bench_latency(n_items: int, requests: int, seed: int, workdir: Path) -> dict[str, Any]:
    """In-process QuotePrices for 20 items through the fairness guard, and the engine alone.

    Both paths get the same requests (3 hourly epochs, random shoppers) and have the epoch
    warmed at its start (``FairQuoteService.warm``; ``PricingEngine.warm`` for the engine
    alone): the steady state of a server whose shoppers are quoted the same items epoch after
    epoch, which its epoch warmer pins at each boundary (``warm_demanded``). The guard is also
    run without the warm-up, where each epoch's first requests wait for the clean room: what
    a server sees for an item first quoted in the epoch. Every request is
    timed in wall-clock time and in CPU time of the calling thread.

    Back to back, the requests make quotes about twice as fast as the quote log's writer
    thread can store them, so that thread is busy for the whole run and shares the
    interpreter and the host's cores with every request. The guard is therefore also run
    paced: the same requests at ``PACED_RATE`` per second, with the calling thread asleep in
    between as a server's would be, each timed from its scheduled arrival, so that a request
    held up by the writer (say, waiting for the interpreter when it wakes) counts as late. A
    request due while its predecessor still runs is timed from the predecessor's end instead:
    a stall of the host then counts once, not again in every request queued behind it.
    """
    nrng = np.random.default_rng(seed)
    rng = random.Random(seed)
    ids = [f"L{i:05d}" for i in range(n_items)]
    base = np.round(nrng.uniform(2.0, 200.0, n_items), 2)
    items = pd.DataFrame(
        {
            "item_id": ids,
            "category": [f"c{i % 10}" for i in range(n_items)],
            "base_price": base,
            "unit_cost": np.round(base * 0.5, 2),
        }
    )
    elast = pd.DataFrame({"item_id": ids, "elasticity": nrng.uniform(-3, -0.5, n_items)})
    catalog = PricingCatalog.from_frames(items, elast)
    shoppers = [
        Shopper(shopper_id=f"u{i}", tenure_days=rng.uniform(0, 900), orders=rng.randint(0, 50))
        for i in range(200)
    ]
    start = datetime(2026, 5, 1, 9, tzinfo=UTC)
    epochs = 3
    per_epoch = requests // epochs
    plan = []
    for k in range(per_epoch * epochs):
        e, j = divmod(k, per_epoch)
        at = start + timedelta(hours=e, seconds=3000 * j / per_epoch)
        plan.append((PublicContext(at=at), rng.sample(ids, 20), rng.choice(shoppers)))

    # The engine alone first, with no other thread in the process (the guard's writer thread
    # would otherwise hand the interpreter lock around and time that instead).
    engine = PricingEngine(catalog, SIM_GUARDRAILS, load_policy("elasticity_optimal"))
    settle_heap()
    engine_wall: list[float] = []
    engine_cpu: list[float] = []
    last_epoch = -1
    for ctx, batch, _ in plan:
        epoch = engine.clock.index(ctx.at)
        if epoch != last_epoch:
            engine.warm(PublicContext(at=engine.clock.start(epoch)))
            last_epoch = epoch
        w0, c0 = time.perf_counter(), time.thread_time()
        engine.decide(batch, ctx)
        engine_cpu.append(time.thread_time() - c0)
        engine_wall.append(time.perf_counter() - w0)

    def guarded(warm: bool, name: str, rate: float = 0.0) -> tuple[list[float], list[float]]:
        db = Database(str(workdir / f"latency_{name}.db"))
        service = FairQuoteService.build(
            catalog=catalog,
            guardrails=SIM_GUARDRAILS,
            policy="elasticity_optimal",
            quote_log=QuoteStore(db),
            audit=AuditStore(db),
            # The plan's clock is not the wall clock: warm at its epoch starts by hand.
            warm_each_epoch=False,
        )
        wall: list[float] = []
        cpu: list[float] = []
        last = -1
        settle_heap()
        gap = 1.0 / rate if rate else 0.0
        due = done = 0.0
        try:
            for ctx, batch, shopper in plan:
                epoch = service.epoch_of(ctx)
                if warm and epoch != last:
                    service.warm(PublicContext(at=service.clock.start(epoch)))
                    last = epoch
                    due = time.perf_counter()
                if gap:
                    due += gap
                    # Sleep (the writer runs meanwhile, as it would while a server waits for
                    # its next request), then wait out the last stretch to start on time.
                    if (left := due - time.perf_counter() - SLEEP_SLACK) > 0:
                        time.sleep(left)
                    while time.perf_counter() < due:
                        pass
                w0, c0 = time.perf_counter(), time.thread_time()
                service.quote(batch, ctx, shopper)
                cpu.append(time.thread_time() - c0)
                end = time.perf_counter()
                wall.append(end - (max(due, done) if gap else w0))
                done = end
        finally:
            service.close()
            db.close()
        return wall, cpu

    guard_wall, guard_cpu = guarded(True, "warm")
    cold_wall, _ = guarded(False, "cold")
    paced_wall, paced_cpu = guarded(True, "paced", PACED_RATE)
    out: dict[str, Any] = {"requests": len(plan), "paced_rate": PACED_RATE}
    for name, values in (
        ("guard", guard_wall),
        ("guard_cpu", guard_cpu),
        ("guard_cold", cold_wall),
        ("guard_paced", paced_wall),
        ("guard_paced_cpu", paced_cpu),
        ("engine", engine_wall),
        ("engine_cpu", engine_cpu),
    ):
        out[f"{name}_p50_ms"], out[f"{name}_p99_ms"] = _pcts(values)
    return out


def latency_rows(lat: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """The latency lines of the table (see :func:`bench_latency`)."""
    return [
        (
            "QuotePrices 20 items in-process incl. fairness guard, epoch warmed at its start, "
            "p50 / p99 wall (ms)",
            f"{lat['guard_p50_ms']:.3f} / {lat['guard_p99_ms']:.3f}",
            "p99 <= 0.5",
            lat["guard_p99_ms"] <= 0.5,
        ),
        (
            "  same, CPU time of the requesting thread, p50 / p99 (ms)",
            f"{lat['guard_cpu_p50_ms']:.3f} / {lat['guard_cpu_p99_ms']:.3f}",
            "",
            True,
        ),
        (
            "  same, no warm-up (each epoch's first requests wait for the clean room), "
            "p50 / p99 wall (ms)",
            f"{lat['guard_cold_p50_ms']:.3f} / {lat['guard_cold_p99_ms']:.3f}",
            "",
            True,
        ),
        (
            f"  same, paced at {lat['paced_rate']:,.0f} requests/s, timed from the scheduled "
            "arrival, p50 / p99 wall; p50 / p99 CPU (ms)",
            f"{lat['guard_paced_p50_ms']:.3f} / {lat['guard_paced_p99_ms']:.3f}; "
            f"{lat['guard_paced_cpu_p50_ms']:.3f} / {lat['guard_paced_cpu_p99_ms']:.3f}",
            "",
            True,
        ),
        (
            "engine.decide 20 items alone (baseline, same run and requests, warmed), "
            "p50 / p99 wall; p50 / p99 CPU (ms)",
            f"{lat['engine_p50_ms']:.3f} / {lat['engine_p99_ms']:.3f}; "
            f"{lat['engine_cpu_p50_ms']:.3f} / {lat['engine_cpu_p99_ms']:.3f}",
            "",
            True,
        ),
    ]


def main() -> None:
    """Run every pricing benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store", type=Path, help="reuse a generated synthetic store directory")
    ap.add_argument("--users", type=int, default=40000)
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--quote-items", type=int, default=1000)
    ap.add_argument("--quote-epochs", type=int, default=1000)
    ap.add_argument("--latency-requests", type=int, default=3000)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument(
        "--latency-only", action="store_true", help="run only the quote-latency benchmark"
    )
    args = ap.parse_args()
    if args.latency_only:
        with tempfile.TemporaryDirectory() as tmp:
            lat = bench_latency(1000, args.latency_requests, args.seed, Path(tmp))
        print("| measure | value | bar | met |")
        print("| --- | --- | --- | --- |")
        for name, value, bar, ok in latency_rows(lat):
            print(f"| {name} | {value} | {bar} | {'yes' if ok else 'NO'} |")
        if args.json:
            args.json.write_text(json.dumps({"latency": lat}, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = args.store
        if root is None or not (root / "events.parquet").exists():
            root = root or work / "store"
            print(f"generating store in {root} ...", file=sys.stderr)
            generate_store(root, users=args.users, items=args.items, days=args.days, seed=args.seed)
        store = load_store(root)
        results = {
            "elasticity": bench_elasticity(store),
            "simulator": bench_simulator(store, args.seed),
            "switchback": bench_switchback(store, args.seed),
            "million": bench_million_quotes(args.quote_items, args.quote_epochs, args.seed),
            "latency": bench_latency(1000, args.latency_requests, args.seed, work),
        }
    el, sim, mq, lat = (results[k] for k in ("elasticity", "simulator", "million", "latency"))
    sb = results["switchback"]
    rows = [
        (
            f"elasticity median abs error, items >= 200 purchases (n={el['items_200']})",
            f"{el['mae_200_median']:.3f}",
            "<= 0.2",
            el["mae_200_median"] <= 0.2,
        ),
        (
            f"thin items on a 21-day window: category prior (n={el['thin_items']}) "
            f"vs own raw fit, median abs error",
            f"{el['thin_prior_median_err']:.3f} vs {el['thin_raw_median_err']:.3f}",
            "prior used",
            el["thin_items"] > 0,
        ),
        (
            "simulator: learner / oracle revenue, last 4 of 8 weeks (start 30 % off)",
            f"{sim['revenue_ratio_last4']:.4f}",
            ">= 0.97",
            sim["revenue_ratio_last4"] >= 0.97,
        ),
        (
            f"simulator: guardrail violations over {sim['quotes']:,} quotes",
            str(sim["violations"]),
            "0",
            sim["violations"] == 0,
        ),
        (
            "switchback by day, 8 weeks: elasticity-optimal minus static, revenue / margin "
            "per day [95 % CI]",
            f"{sb['revenue_diff']:+,.0f} [{sb['revenue_diff_ci_low']:+,.0f}, "
            f"{sb['revenue_diff_ci_high']:+,.0f}] / {sb['margin_diff']:+,.0f} "
            f"[{sb['margin_diff_ci_low']:+,.0f}, {sb['margin_diff_ci_high']:+,.0f}]",
            "",
            True,
        ),
        (
            f"independent audit: violations over {mq['quotes']:,} quotes ({mq['seconds']:.0f} s)",
            str(mq["violations"]),
            "0",
            mq["violations"] == 0 and mq["quotes"] >= 1_000_000,
        ),
        *latency_rows(lat),
    ]
    print("| measure | value | bar | met |")
    print("| --- | --- | --- | --- |")
    for name, value, bar, ok in rows:
        print(f"| {name} | {value} | {bar} | {'yes' if ok else 'NO'} |")
    if mq["violations"]:
        print("examples:", mq["examples"], file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
