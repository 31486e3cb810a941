"""End to end: serve two variants, log their shoppers' traffic over HTTP, read the experiment
out over HTTP and on the command line; a store outage never fails a recommendation."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from experiment_support import event
from serving_support import Clients, running_server, tiny_bundles
from sqlalchemy import text

from serving.app import FairshelfServer

SPLIT = {"default": 0.5, "als": 0.5}
SHOPPERS = 160


def _wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _traffic(http: httpx.Client) -> dict[str, str]:
    """Recommend to every shopper; the als shoppers buy a shown item more often."""
    variants: dict[str, str] = {}
    past = datetime.now(UTC) - timedelta(days=3)
    for n in range(SHOPPERS):
        user = f"exp-shopper-{n}"
        history = [event(0, user, "i-old", "purchase", 10.0 + n % 5, past)] if n % 3 else []
        body = http.post(
            "/v1/recommend", json={"user_id": user, "k": 5}, headers=Clients.hdr()
        ).json()
        variants[user] = body["variant"]
        shown = [it["item_id"] for it in body["items"]]
        now = datetime.now(UTC)
        evs = [*history, event(1, user, shown[0], "click", 20.0, now)]
        buys = n % 2 == 0 if body["variant"] == "als" else n % 4 == 0
        if buys:
            evs.append(event(2, user, shown[0], "add_to_cart", 20.0, now))
            evs.append(event(3, user, shown[0], "purchase", 20.0 + n % 3, now))
        resp = http.post("/v1/events", json={"events": evs}, headers=Clients.hdr())
        assert resp.status_code == 200, resp.text
    return variants


def test_two_variants_served_logged_and_read_out(tmp_path: Path) -> None:
    db_path = tmp_path / "db.sqlite"
    recsys = {"experiment": {"name": "ranker", "salt": "s1", "split": SPLIT}}
    bundles = tiny_bundles(tmp_path / "bundles")
    with (
        running_server(bundles, db_path, recsys=recsys) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as http,
    ):
        variants = _traffic(http)
        assert set(variants.values()) == set(SPLIT)
        assert server.exposures is not None
        _wait_for(lambda: server.exposures is not None and server.exposures.backlog == 0)
        report = http.get("/v1/experiments/ranker/report", headers=Clients.hdr("pricing"))
        assert report.status_code == 200, report.text
        body = report.json()["report"]
        _check_readout(body, variants)
        _check_errors(http)
        _outage_still_answers(server, http)
        metrics = http.get("/metrics").text
        assert "fairshelf_exposures_written_total" in metrics
    out = tmp_path / "report"
    cli = subprocess.run(
        [sys.executable, "-m", "fairshelf.cli.main", "experiments", "report", "--db",
         str(db_path), "--experiment", "ranker", "--format", "json", "--out", str(out),
         "--split", "default=0.5,als=0.5"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    written = json.loads((out / "report.json").read_text())
    # The five shoppers served during the outage were logged once the store came back.
    assert sum(written["srm"]["observed"].values()) == SHOPPERS + 5
    assert (out / "effects.png").stat().st_size > 0 and (out / "path.png").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "fairshelf.cli.main", "experiments", "report", "--db",
         str(db_path), "--experiment", "nope", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "no exposures of an experiment named 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr


def _check_readout(body: dict, variants: dict[str, str]) -> None:  # type: ignore[type-arg]
    assert body["control"] == "default" and body["unit"] == "shopper"
    counts = {v: list(variants.values()).count(v) for v in SPLIT}
    assert body["srm"]["observed"] == counts
    rows = {(m["metric"], m["variant"]): m for m in body["metrics"]}
    conv = rows[("conversion", "als")]
    # Planted: als shoppers buy half the time, default shoppers a quarter of the time.
    assert conv["effect"]["absolute"] > 0.1 and conv["effect"]["ci_low"] > 0
    assert conv["cuped"] is not None and conv["seq_p_value"] is not None
    ctr = rows[("rec_ctr", "als")]
    assert ctr["control_value"] == 1 / 5  # one click on one of five shown items
    guard = {v["variant"]: v for v in body["variants"]}
    assert all(g["p99_ms"] > 0 and g["fallback_share"] is not None for g in guard.values())
    assert "NaN" not in json.dumps(body)


def _check_errors(http: httpx.Client) -> None:
    denied = http.get("/v1/experiments/ranker/report", headers=Clients.hdr("storefront"))
    assert denied.status_code == 403
    unknown = http.get("/v1/experiments/nope/report", headers=Clients.hdr("admin"))
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    empty = http.get(
        "/v1/experiments/ranker/report",
        params={"until": "2001-01-01T00:00:00Z"},
        headers=Clients.hdr("admin"),
    )
    assert empty.status_code == 400 and "no exposures" in empty.json()["error"]["message"]


def _outage_still_answers(server: FairshelfServer, http: httpx.Client) -> None:
    # The table out of the way: every write fails as with a database down; nothing is lost.
    with server.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE exposures RENAME TO exposures_away"))
    for n in range(5):
        resp = http.post(
            "/v1/recommend", json={"user_id": f"outage-{n}", "k": 3}, headers=Clients.hdr()
        )
        assert resp.status_code == 200
    assert server.exposures is not None and server.exposures.backlog >= 5  # held, not lost
    with server.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE exposures_away RENAME TO exposures"))
    _wait_for(lambda: server.exposures is not None and server.exposures.backlog == 0)
