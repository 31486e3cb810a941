"""End to end: serve bundle v1; log purchases of new items by a new and a known shopper over HTTP;
``fairshelf retrain`` publishes v2 and the running server reloads it; those shoppers' lists now
come from their trained vectors and reflect the purchases; items new to the catalogue are
served (content vectors for those nobody bought yet); ``bundles rollback`` returns the server
to v1 and the audit chain verifies and names it."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from retrain_support import bundles_cmd, fairshelf, retrain_args, run_report, setup
from serving_support import Clients, running_server, wait_for
from serving_support import recommend as _recommend
from serving_support import top_category as _top

from pricing.fairness.report import verify_audit_log
from serving.store.audit_store import AuditStore
from serving.store.db import Database

pytestmark = pytest.mark.timeout(400)


def _new_items(items: pd.DataFrame, category: str) -> pd.DataFrame:
    """Four items new to the catalogue in ``category``, all at one price (one price band)."""
    like = items[items["category"] == category].iloc[0]
    rows = []
    for n in range(1, 5):
        row = like.copy()
        row["item_id"] = f"NEW-{n}"
        row["title"] = f"new item {n}"
        rows.append(row)
    return pd.DataFrame(rows)


def test_retrain_loop_end_to_end(tmp_path: Path) -> None:
    s = setup(tmp_path)
    items = pd.read_parquet(s.items)
    category = str(items["category"].value_counts().index[0])
    top = _top(category)
    catalog = pd.concat([items, _new_items(items, category)], ignore_index=True)
    s.items = tmp_path / "items_now.parquet"
    catalog.to_parquet(s.items, index=False)
    when = s.logged["timestamp"].max()

    with running_server(s.bundles, tmp_path / "events.db") as server:
        clients = Clients(server)
        http = clients.http
        v1 = server.holder.require()
        known = str(v1.bundle.user_ids[5])
        in_cat = [str(i) for i in items.loc[items["category"].map(_top) == top, "item_id"]]
        bought = {"shopper-new-1": [*in_cat[:4], "NEW-1", "NEW-2"], known: ["NEW-1", *in_cat[4:6]]}
        events = [
            {
                "event_id": f"e2e-{user}-{n}",
                "user_id": user,
                "item_id": item,
                "event_type": "purchase",
                "unit_price": 4.0,
                "timestamp": (when + timedelta(minutes=10 + n)).isoformat(),
                "session_id": f"s-{user}",
            }
            for user, its in bought.items()
            for n, item in enumerate(its)
        ]
        known_before = [i["item_id"] for i in _recommend(http, known)["items"]]
        logged = http.post("/v1/events", json={"events": events}, headers=Clients.hdr())
        assert logged.status_code == 200 and logged.json()["accepted"] == len(events)
        assert _recommend(http, "shopper-new-1")["strategy"] != "trained_vector"

        t = time.perf_counter()
        done = fairshelf(*retrain_args(s))
        seconds = time.perf_counter() - t
        assert done.returncode == 0, done.stdout + done.stderr
        report = run_report(s.bundles)
        gate = report["gate"]
        print(
            f"\ne2e retrain: {report['outcome']} in {seconds:.1f} s; gate "
            + "; ".join(
                f"{k} {c['champion']:.4f}->{c['challenger']:.4f} "
                f"[{c['low']:+.4f}, {c['high']:+.4f}]"
                for k, c in gate["comparisons"].items()
            )
            + f" on {gate['n_users']} shoppers"
        )
        v2 = report["challenger"]
        wait_for(lambda: _recommend(http, known)["model_version"] == v2, 60)

        model = server.holder.require()
        cats = model.bundle.items.set_index("item_id")["category"].map(_top)
        trending = [i["item_id"] for i in _recommend(http, "nobody-knows-me")["items"]]
        users = model.bundle.user_index()
        inter = model.bundle.interactions
        for user, its in bought.items():
            after = _recommend(http, user)
            # A trained vector, learnt from rows that hold the purchases logged over HTTP.
            assert after["strategy"] == "trained_vector", user
            rows = inter.loc[inter["user_index"] == users[user], "item_index"]
            assert set(its) <= set(model.bundle.item_ids[rows.to_numpy()])
            listed = [i["item_id"] for i in after["items"]]
            assert not set(listed) & set(its)  # bought: excluded by default
            assert listed != trending
        assert [i["item_id"] for i in _recommend(http, known)["items"]] != known_before
        # The new items are in the served catalogue, bought or not, and priced.
        assert {"NEW-1", "NEW-2", "NEW-3", "NEW-4"} <= set(model.bundle.item_ids)
        quote = http.post("/v1/prices/quote", json={"item_ids": ["NEW-3"]}, headers=Clients.hdr())
        assert quote.status_code == 200, quote.text
        # NEW-3 and NEW-4 nobody bought: their item-tower vectors are their content alone
        # (same category and price band: the same vector), closest to their category.
        pos = model.bundle.item_index()
        tt = model.bundle.two_tower_item_vectors
        assert tt is not None
        np.testing.assert_allclose(tt[pos["NEW-3"]], tt[pos["NEW-4"]], atol=1e-6)
        sims = tt @ tt[pos["NEW-3"]]
        old = np.array([not str(i).startswith("NEW-") for i in model.bundle.item_ids])
        nearest = np.argsort(-np.where(old, sims, -np.inf))[:5]
        assert Counter(cats.iloc[nearest])[top] >= 3

        back = bundles_cmd(s, "rollback", "--reason", "e2e rollback", "--actor", "ops@example")
        assert back.returncode == 0, back.stdout + back.stderr
        wait_for(lambda: _recommend(http, known)["model_version"] == v1.bundle_id, 60)
        clients.close()

    db = Database(s.db_url)
    try:
        store = AuditStore(db)
        assert verify_audit_log(store).ok
        # The running server seals quote batches into the same chain, so the newest bundle
        # record is looked up by kind.
        last = [r for r in store.records() if r.kind.startswith("bundle_")][-1]
        assert last.kind == "bundle_rolled_back"
        assert last.payload["bundle_id"] == v1.bundle_id and last.payload["previous"] == v2
    finally:
        db.close()
