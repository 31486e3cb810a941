"""``make demo``: generate a small store, train, serve, and show a live recommendation and quote.

Everything runs on this machine: a synthetic storefront is generated into ``DIR/store``, a
bundle is trained into ``DIR/bundles``, the server starts on free ports of 127.0.0.1 with a
one-off admin key, and one recommendation and one price quote are fetched through the real HTTP
API. Then a short A/B test runs: shoppers split between two retrievers are served, their
clicks and purchases logged, and the experiment's readout fetched. The console's address and the
key to sign in with are printed; run from a terminal, the server keeps serving until Ctrl-C
(``--no-serve`` stops it at once, as a pipe or CI does).

Usage::

    python -m fairshelf.demo --dir demo [--serve | --no-serve]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from serving.app import FairshelfServer
from serving.logging import configure_logging
from serving.settings import load_settings

STORE_USERS, STORE_ITEMS, STORE_DAYS, STORE_SEED = 2000, 400, 60, 42
DEMO_SPLIT = {"default": 0.5, "als": 0.5}
AB_SHOPPERS = 200
TRAIN_CONFIG = {"als": {"factors_grid": [32], "iterations": 10}, "two_tower": {"epochs": 2}}


def _say(text: str) -> None:
    print(text, flush=True)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    line = "| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |"
    rule = "|" + "|".join("-" * (widths[c] + 2) for c in columns) + "|"
    body = [
        "| " + " | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) + " |" for r in rows
    ]
    return "\n".join([line, rule, *body])


RANKING_COLUMNS = ["rank", "item_id", "relevance", "reason", "moved"]


def ranking_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recommendation table as a reader can follow it.

    ``score`` is each item's relevance before re-ranking; the list's order also weighs
    category diversity (and boosts, fatigue), so an item can sit above one with a higher
    score. The table shows the final rank, the relevance with its own rank, and why an item
    moved, instead of a score column that seems out of order.
    """
    by_relevance = sorted(range(len(items)), key=lambda i: -float(items[i]["score"]))
    relevance_rank = {i: r + 1 for r, i in enumerate(by_relevance)}
    rows = []
    for i, it in enumerate(items):
        shift = relevance_rank[i] - (i + 1)
        moved = ""
        if shift > 0:
            moved = f"up {shift} (re-ranked for variety)"
        elif shift < 0:
            moved = f"down {-shift} (re-ranked for variety)"
        rows.append(
            {
                "rank": i + 1,
                "item_id": it["item_id"],
                "relevance": f"{float(it['score']):.2f} (#{relevance_rank[i]})",
                "reason": it.get("reason", ""),
                "moved": moved,
            }
        )
    return rows


def prepare(root: Path) -> Path:
    """Generate the store and train a bundle under ``root`` (reused when already there)."""
    from training.data.synthetic import generate_store
    from training.trainer import train

    store = root / "store"
    bundles = root / "bundles"
    if not (store / "events.parquet").is_file():
        _say(f"generating a synthetic store in {store} ...")
        generate_store(
            store, users=STORE_USERS, items=STORE_ITEMS, days=STORE_DAYS, seed=STORE_SEED
        )
    if not (bundles / "current").exists():
        _say(f"training a bundle into {bundles} ...")
        bundles.mkdir(parents=True, exist_ok=True)
        config = root / "train-config.json"
        config.write_text(json.dumps(TRAIN_CONFIG))
        train(
            store / "events.parquet", store / "items.parquet", bundles, config_path=config, seed=1
        )
    return bundles


def ab_test(http: httpx.Client, users: list[str]) -> None:
    """Serve each shopper once and log a click, and sometimes a purchase, of a shown item."""
    rng = random.Random(7)
    for user in users:
        body = http.post("/v1/recommend", json={"user_id": user, "k": 5}).raise_for_status()
        items = body.json()["items"]
        if not items:
            continue
        item = items[rng.randrange(len(items))]["item_id"]
        events = [{"user_id": user, "item_id": item, "event_type": "click", "unit_price": 0.0}]
        if rng.random() < 0.3:
            price = round(rng.uniform(5, 60), 2)
            events.append(
                {"user_id": user, "item_id": item, "event_type": "purchase", "unit_price": price}
            )
        http.post("/v1/events", json={"events": events}).raise_for_status()


def readout(http: httpx.Client) -> None:
    """Fetch and print the experiment's readout. No effect is planted, so about one metric in
    twenty shows a 95 % interval without zero by chance; the always-valid one guards that."""
    resp = http.get("/v1/experiments/retriever/report").raise_for_status()
    report = resp.json()["report"]
    split = ", ".join(f"{v['variant']} {v['units']}" for v in report["variants"])
    _say(
        f"\nGET /v1/experiments/retriever/report  shoppers: {split}; sample ratio "
        f"p = {report['srm']['p_value']:.2f}"
    )

    def ci(lo: float | None, hi: float | None) -> str:
        return "n/a" if lo is None or hi is None else f"[{lo:+.3g}, {hi:+.3g}]"

    rows = []
    for m in report["metrics"]:
        eff = m["effect"] or {}
        rows.append(
            {
                "metric": m["metric"],
                "variant": m["variant"],
                "effect": m["note"] or f"{eff['absolute']:+.3g}",
                "95% CI": ci(eff.get("ci_low"), eff.get("ci_high")),
                "always-valid CI": ci(m["seq_ci_low"], m["seq_ci_high"]),
            }
        )
    _say(_table(rows, ["metric", "variant", "effect", "95% CI", "always-valid CI"]))


def run(root: Path, serve: bool = False) -> None:
    """Run the whole demo under ``root``; with ``serve``, keep serving until interrupted."""
    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    bundles = prepare(root)
    key = "sk-demo-" + secrets.token_hex(16)
    settings = load_settings(
        None,
        bundles_dir=bundles,
        db_url=f"sqlite:///{root / 'fairshelf.db'}",
        http_port=0,
        grpc_port=0,
        api_keys={key: "admin"},
        log_format="console",
        log_level="warning",
        recsys={"experiment": {"name": "retriever", "split": DEMO_SPLIT}},
    )
    configure_logging(settings.log_format, settings.log_level)
    server = FairshelfServer(settings)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.http_port}"
        _say(f"serving: HTTP {base} (docs at {base}/docs), gRPC 127.0.0.1:{server.grpc_port}")
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30) as http:
            model = http.get("/v1/model").raise_for_status().json()
            _say(
                f"model {model['model_version']}: {model['n_items']} items, "
                f"{model['n_users']} shoppers"
            )
            user = str(server.holder.require().bundle.user_ids[0])
            rec = http.post("/v1/recommend", json={"user_id": user, "k": 5})
            body = rec.raise_for_status().json()
            _say(
                f"\nPOST /v1/recommend  user_id={user}  strategy={body['strategy']}  "
                f"variant={body['variant']}"
            )
            _say(_table(ranking_rows(body["items"]), RANKING_COLUMNS))
            ids = [it["item_id"] for it in body["items"]]
            rail = {"max_change_pct": 0.15, "min_margin": 0.1, "price_ending": ".99"}
            put = http.put(
                "/v1/guardrails/global",
                json={"values": rail, "reason": "demo: bounded, margin-safe prices"},
            )
            put.raise_for_status()
            _say(f"\nPUT /v1/guardrails/global  {rail}  -> version {put.json()['version']}")
            quote = http.post("/v1/prices/quote", json={"item_ids": ids[:3]})
            if quote.status_code == 200:
                quotes = quote.json()["quotes"]
                _say("\nPOST /v1/prices/quote  (the same price for every shopper in this epoch)")
                cols = ["item_id", "final_price", "base_price", "reason_codes", "quote_id"]
                _say(_table(quotes, cols))
                why = http.get(f"/v1/prices/quotes/{quotes[0]['quote_id']}")
                if why.status_code == 200:
                    _say(f"\nGET /v1/prices/quotes/{quotes[0]['quote_id']}")
                    _say(str(why.json()["explanation"].get("summary", "")))
            else:
                _say(
                    f"\nPOST /v1/prices/quote -> {quote.status_code}: "
                    f"{quote.json()['error']['message']}"
                )
            ab_test(http, [str(u) for u in server.holder.require().bundle.user_ids[:AB_SHOPPERS]])
            assert server.exposures is not None
            server.exposures.flush()
            readout(http)
        _say(f"\nconsole: {base}/console  (sign in with the API key {key})")
        if serve:
            _say("serving until Ctrl-C ...")
            with contextlib.suppress(KeyboardInterrupt):
                server.wait()
    finally:
        server.stop()
    _say(f"\ndone in {time.perf_counter() - started:.0f} s; server stopped.")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (``make demo``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("demo"), help="working directory")
    parser.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep serving for the console until Ctrl-C (default: when run from a terminal)",
    )
    args = parser.parse_args(argv)
    run(args.dir, serve=sys.stdin.isatty() if args.serve is None else args.serve)


if __name__ == "__main__":
    main()
