"""Fairness-guard overhead per quoted item, with and without the guard in the same run.

Run ``python benchmarks/guard_bench.py`` (well under a minute). For each request size it
measures, on the same engine, catalogue and contexts:

- ``engine``: ``PricingEngine.decide`` alone (what a server without the guard would call; the
  engine's per-epoch cache is warm, as in steady state);
- ``guard``: ``FairQuoteService.quote`` for a random shopper: pinned fair price, the policy
  re-asked in the shopper's scope, comparison, published programs, quote records handed to
  the quote log (request path);
- ``guard + log``: the same, plus the time the writer thread needed to store every quote in
  SQLite (measured until the log is flushed).

The overhead column is ``guard - engine`` per item; the bar is 50 µs. Times are CPU time of
the requesting thread (``time.thread_time``), and of the whole process for ``guard + log``
(the writer thread included), so that other work on a shared machine does not inflate them;
the wall-clock time of the guarded run is printed too.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pricing.catalog import PricingCatalog
from pricing.context import ItemState, PublicContext
from pricing.engine import PricingEngine
from pricing.fairness.guard import FairQuoteService
from pricing.fairness.programs import DiscountProgram, Eligibility, ProgramBook
from pricing.fairness.shopper import Shopper
from pricing.guardrail_rules import Guardrail
from pricing.guardrails import GuardrailSet
from pricing.policies.registry import load_policy
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.quote_store import QuoteStore

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DEVICES = ("ios", "android", "web", "mini-program")


def _catalog(n: int) -> PricingCatalog:
    return PricingCatalog(
        {
            f"sku-{i:05d}": ItemState(
                item_id=f"sku-{i:05d}",
                category="home/kitchen" if i % 2 else "toys",
                base_price=round(5 + (i % 97) * 1.37, 2),
                unit_cost=round(2 + (i % 97) * 0.6, 2),
                stock=50,
                elasticity=-1.2 - (i % 7) * 0.2,
            )
            for i in range(n)
        }
    )


def _guardrails() -> GuardrailSet:
    return GuardrailSet().with_rule(
        Guardrail("global", min_ratio=0.8, max_ratio=1.25, min_margin=0.05, price_ending=0.99)
    )


def _programs() -> ProgramBook:
    return ProgramBook(
        [
            DiscountProgram(
                "welcome10",
                "Welcome coupon",
                "New customers get 10% off.",
                Eligibility.NEW_CUSTOMER,
                10,
            ),
            DiscountProgram(
                "member5", "Member price", "Members pay 5% less.", Eligibility.MEMBER, 5
            ),
        ]
    )


def run(
    requests: int, sizes: list[int], catalog_size: int, workdir: Path
) -> list[dict[str, float]]:
    """Measure every request size; returns one row per size."""
    rng = random.Random(7)
    catalog = _catalog(catalog_size)
    ids = list(catalog)
    rows = []
    for size in sizes:
        engine = PricingEngine(catalog, _guardrails(), load_policy("elasticity_optimal"))
        db = Database(str(workdir / f"guard_bench_{size}.db"))
        service = FairQuoteService(
            engine, quote_log=QuoteStore(db), audit=AuditStore(db), programs=_programs()
        )
        n = max(50, requests // size)
        batches = [rng.sample(ids, size) for _ in range(n)]
        ctxs = [PublicContext(at=AT + timedelta(minutes=rng.randrange(60))) for _ in range(n)]
        shoppers = [
            Shopper(
                f"u{i}",
                tenure_days=rng.uniform(0, 1500),
                orders=rng.randint(0, 40),
                device=rng.choice(DEVICES),
                member=rng.random() < 0.3,
            )
            for i in range(n)
        ]
        # Warm both paths: every item's fair price is pinned and the engine cache filled.
        for start in range(0, len(ids), 500):
            service.quote(ids[start : start + 500], PublicContext(at=AT))
        service.flush()

        t0 = time.thread_time()
        for batch, ctx in zip(batches, ctxs, strict=True):
            engine.decide(batch, ctx)
        engine_s = time.thread_time() - t0

        p0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
        for batch, ctx, shopper in zip(batches, ctxs, shoppers, strict=True):
            service.quote(batch, ctx, shopper)
        guard_s = time.thread_time() - t0
        guard_wall = time.perf_counter() - w0
        service.flush()
        logged_s = time.process_time() - p0

        items = n * size
        rows.append(
            {
                "size": size,
                "requests": n,
                "engine_us": engine_s / items * 1e6,
                "guard_us": guard_s / items * 1e6,
                "logged_us": logged_s / items * 1e6,
                "overhead_us": (guard_s - engine_s) / items * 1e6,
                "wall_us": guard_wall / items * 1e6,
            }
        )
        service.close()
        db.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit 1 when the overhead bar is missed at any size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="items quoted per size")
    parser.add_argument("--sizes", default="1,10,50", help="items per request, comma-separated")
    parser.add_argument("--catalog", type=int, default=2000, help="catalogue size")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="guard_bench_") as tmp:
        rows = run(args.requests, sizes, args.catalog, Path(tmp))
    print(
        "| items/request | requests | engine µs/item | guard µs/item | guard + quote log "
        "µs/item | overhead µs/item (bar ≤ 50) | guard wall µs/item |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['size']} | {r['requests']} | {r['engine_us']:.1f} | {r['guard_us']:.1f} | "
            f"{r['logged_us']:.1f} | {r['overhead_us']:.1f} | {r['wall_us']:.1f} |"
        )
    return 0 if all(r["overhead_us"] <= 50 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
