"""Console benchmark: each page's time and the guardrail preview, beside the API's QuotePrices.

Steps, all in one run against one real server on 127.0.0.1 (HTTP, in this process):

1. build (or reuse) the serving benchmark's catalog: 100,000 items, 200,000 shoppers
   (``serve_catalog.py``); the pricing catalogue then merges the top-level categories ``c00``
   and ``c01`` into ``c00``, so that one category holds about 10,000 items (the catalog has 20
   top-level categories of about 5,000);
2. fill the stores the pages read: ``--versions`` guardrail changes (a long history to page
   through) and ``--quote-calls`` QuotePrices calls of 20 items over HTTP, timed (the API's own
   figure of this run);
3. sign in to the console and time every page over ``--calls`` requests each (after a warm-up),
   as the round trip on loopback (an upper bound of the server's time);
4. time the dry-run preview of a guardrail change on the 10,000-item category;
5. print a Markdown table with each bar, the measured value and whether it was met.

Usage::

    python benchmarks/console_bench.py [--dir benchmarks/out] [--calls 100] [--versions 10000]
"""

from __future__ import annotations

import argparse
import os
import re
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

ADMIN_KEY = "sk-bench-console-admin-0000001"
PAGE_BAR_MS = 100.0
PREVIEW_BAR_S = 1.0


def _pcts(samples: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _merge_categories(server: Any) -> int:
    """Price c01's items as part of c00 (one ~10,000-item category); returns its size."""
    from pricing.catalog import PricingCatalog

    model = server.holder.require()
    items = model.bundle.items.copy()
    cats = items["category"].astype(str)
    items["category"] = cats.str.replace(r"^c01/", "c00/", regex=True)
    quotes = server.pricing.quotes
    quotes.set_catalog(PricingCatalog.from_frames(items, model.bundle.elasticity))
    return int(items["category"].str.startswith("c00/").sum())


def _fill_history(server: Any, versions: int) -> None:
    from tqdm import tqdm

    from pricing.guardrail_rules import Guardrail

    store = server.pricing.store
    for n in tqdm(range(versions), desc="guardrail versions", mininterval=2):
        rule = Guardrail("category", f"c{10 + n % 5:02d}", min_margin=0.01 * (n % 7))
        store.put(rule, author="role:bench", reason=f"bench change {n}")
    server.pricing.refresh_guardrails()


def _quote_calls(base: str, item_ids: list[str], calls: int) -> tuple[list[float], list[str]]:
    rng = np.random.default_rng(5)
    batches = [
        [item_ids[j] for j in rng.choice(len(item_ids), 20, replace=False)] for _ in range(200)
    ]
    spent: list[float] = []
    quote_ids: list[str] = []
    headers = {"x-api-key": ADMIN_KEY}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for n in range(calls):
            body: dict[str, Any] = {"item_ids": batches[n % len(batches)]}
            if n % 2:  # half from long-standing shoppers, for the loyal vs new chart
                body["shopper"] = {"user_id": "", "tenure_days": 900, "orders": 40}
            t = time.perf_counter()
            resp = http.post("/v1/prices/quote", json=body)
            spent.append(time.perf_counter() - t)
            resp.raise_for_status()
            if n % 50 == 0:
                quote_ids.append(resp.json()["quotes"][0]["quote_id"])
    return spent, quote_ids


def _time_get(http: httpx.Client, path: str, calls: int) -> tuple[float, float]:
    for _ in range(3):
        http.get(path).raise_for_status()
    spent = []
    for _ in range(calls):
        t = time.perf_counter()
        resp = http.get(path)
        spent.append(time.perf_counter() - t)
        if resp.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {resp.status_code}")
    return _pcts(spent)


def run(work: Path, calls: int, versions: int, quote_calls: int) -> dict[str, Any]:
    """Serve the catalog, fill the stores, time pages and the preview; return the figures."""
    from serving.app import FairshelfServer
    from serving.logging import configure_logging
    from serving.reload import settle_heap
    from serving.settings import load_settings

    db = work / "console.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    settings = load_settings(
        None,
        bundles_dir=work / "bundles",
        db_url=f"sqlite:///{db}",
        http_port=0,
        grpc_port=0,
        api_keys={ADMIN_KEY: "admin"},
        log_level="warning",
    )
    configure_logging(settings.log_format, settings.log_level)
    server = FairshelfServer(settings)
    server.start(wait_ready=600)
    out: dict[str, Any] = {}
    try:
        settle_heap()
        base = f"http://127.0.0.1:{server.http_port}"
        out["category_items"] = _merge_categories(server)
        _fill_history(server, versions)
        item_ids = [str(i) for i in server.holder.require().bundle.item_ids]
        print(f"QuotePrices x {quote_calls} ...", flush=True)
        spent, quote_ids = _quote_calls(base, item_ids, quote_calls)
        out["quote20"] = _pcts(spent)
        out["quotes"] = quote_calls * 20
        http = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
        token = _csrf(http.get("/console/signin").text)
        signed = http.post(
            "/console/signin", data={"csrf": token, "api_key": ADMIN_KEY, "next": "/console"}
        )
        assert signed.status_code == 303, signed.text
        quoted = server.pricing.quote_log.get(quote_ids[-1]).item_id
        deep = max(1, versions // 20 // 2)
        pages = {
            "overview": "/console",
            "guardrails (history page 1)": "/console/guardrails",
            f"guardrails (history page {deep})": f"/console/guardrails?page={deep}",
            "guardrails + effective guardrail": f"/console/guardrails?item={quoted}",
            "guardrail edit form": "/console/guardrails/edit?scope=category:c00",
            "item search by title": "/console/items?q=item%209999",
            "item (7 days, quotes)": f"/console/items/{quoted}?days=7",
            "quote explanation": f"/console/quotes/{quote_ids[-1]}",
            "fairness": "/console/fairness",
        }
        out["pages"] = {}
        for name, path in pages.items():
            out["pages"][name] = _time_get(http, path, calls)
            print(f"page {name}: p50/p95 {out['pages'][name]}", flush=True)
        # The fairness report itself reads the whole quote and audit logs: timed apart.
        out["fairness_fresh"] = _time_get(http, "/console/fairness?fresh=1", 3)
        print(f"fairness recomputed: {out['fairness_fresh']}", flush=True)
        edit = http.get("/console/guardrails/edit?scope=category:c00").text
        form = {
            "csrf": _csrf(edit),
            "scope": "category:c00",
            "expected_version": str(server.pricing.store.count()),
            "ceiling": "30",
            "min_margin": "0.05",
            "action": "preview",
        }
        spent, cpu = [], []
        for _ in range(5):
            # The server runs in this process and the client waits on its socket, so the
            # process CPU time is the server's: it does not grow when other work shares the host.
            t, c = time.perf_counter(), time.process_time()
            resp = http.post("/console/guardrails/edit", data=form)
            spent.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            found = re.search(r"<strong>(\d+)</strong> of (\d+) items", resp.text)
            assert resp.status_code == 200 and found, resp.text[:500]
        out["preview"] = (float(np.median(spent)), max(spent))
        out["preview_cpu"] = (float(np.median(cpu)), max(cpu))
        out["preview_items"] = int(found.group(2))
        out["preview_changed"] = int(found.group(1))
        http.close()
    finally:
        server.stop()
    return out


def render(r: dict[str, Any], calls: int, versions: int) -> str:
    """The Markdown table."""
    rows = [
        "| what | bar | measured | met |",
        "|---|---|---|---|",
    ]
    q50, q95 = r["quote20"]
    rows.append(
        f"| API QuotePrices, 20 items, HTTP round trip (same run) | reference | "
        f"p50 {q50:.1f} ms, p95 {q95:.1f} ms | |"
    )
    for name, (p50, p95) in r["pages"].items():
        ok = "yes" if p95 <= PAGE_BAR_MS else "NO"
        rows.append(
            f"| console page: {name} | p95 <= {PAGE_BAR_MS:.0f} ms | "
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms | {ok} |"
        )
    f50, f95 = r["fairness_fresh"]
    rows.append(
        f"| fairness page with the report recomputed (`?fresh=1`; else reused up to 30 s) "
        f"| informative | p50 {f50:.0f} ms, p95 {f95:.0f} ms (3 requests) | |"
    )
    med, worst = r["preview"]
    cmed, cworst = r["preview_cpu"]
    ok = "yes" if worst <= PREVIEW_BAR_S else "NO"
    rows.append(
        f"| guardrail preview, category of {r['preview_items']:,} items "
        f"({r['preview_changed']:,} would change), wall time | <= {PREVIEW_BAR_S:.0f} s | "
        f"median {med:.2f} s, worst of 5 {worst:.2f} s | {ok} |"
    )
    rows.append(
        f"| the same preview, CPU time of the server | <= {PREVIEW_BAR_S:.0f} s | "
        f"median {cmed:.2f} s, worst of 5 {cworst:.2f} s | "
        f"{'yes' if cworst <= PREVIEW_BAR_S else 'NO'} |"
    )
    load = os.getloadavg()
    notes = (
        f"\nHost load average during the run: {load[0]:.1f} (1 min) on {os.cpu_count()} cores. "
        f"Pages: {calls} requests each after 3 warm-up requests, one client on loopback (the "
        "round trip bounds the server's time from above). Stores: "
        f"{versions:,} guardrail versions, {r['quotes']:,} quotes in the log. "
        f"The 10,000-item category is c00 with c01 merged in ({r['category_items']:,} items)."
    )
    return "\n".join(rows) + "\n" + notes


def main(argv: list[str] | None = None) -> str:
    """Command-line entry point; prints and returns the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=HERE / "out")
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--calls", type=int, default=100, help="timed requests per page")
    p.add_argument("--versions", type=int, default=10_000, help="guardrail versions stored")
    p.add_argument("--quote-calls", type=int, default=1000, help="QuotePrices calls (20 items)")
    args = p.parse_args(argv)
    work = args.dir / f"{args.items}x{args.users}"
    work.mkdir(parents=True, exist_ok=True)
    print(f"building catalog in {work} ...", flush=True)
    build_catalog_bundle(work / "bundles", n_items=args.items, n_users=args.users)
    result = run(work, args.calls, args.versions, args.quote_calls)
    table = render(result, args.calls, args.versions)
    print(table)
    return table


if __name__ == "__main__":
    main()
