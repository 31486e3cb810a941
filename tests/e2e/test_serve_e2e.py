"""End to end: train a tiny bundle, serve it, log a purchase and see the list change, hot-swap a
new bundle, refuse a corrupted one while the last good one keeps serving."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import httpx
from serving_support import Clients, running_server, tiny_bundles
from serving_support import recommend as _recommend
from serving_support import top_category as _top
from serving_support import wait_for as _wait_for

from recsys.bundle import set_current


def _copy_bundle(src: Path, bundles: Path, new_id: str) -> Path:
    dst = bundles / new_id
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["bundle_id"] = new_id
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def _mean_rank(ranked: list[dict[str, object]], wanted: list[str]) -> float:
    """Mean position of ``wanted`` items in a ranked list (absent ones count as its length)."""
    at = {str(entry["item_id"]): r for r, entry in enumerate(ranked)}
    return sum(at.get(i, len(ranked)) for i in wanted) / len(wanted)


def test_purchase_changes_list_and_hot_reload_refuses_a_broken_bundle(tmp_path: Path) -> None:
    bundles = tiny_bundles(tmp_path / "bundles")
    with running_server(bundles, tmp_path / "events.db") as server:
        clients = Clients(server)
        http = clients.http
        model = server.holder.require()
        first_version = model.bundle_id
        items = model.bundle.items.set_index("item_id")
        user = str(model.bundle.user_ids[3])

        before = _recommend(http, user)
        assert before["strategy"] == "trained_vector"
        assert before["model_version"] == first_version
        ranked_before = _recommend(http, user, k=len(items))["items"]
        shown = Counter(_top(str(items.loc[i["item_id"], "category"])) for i in before["items"])
        # Buy three items of the category this shopper is shown least (ties by name: a set's
        # order changes with the interpreter's hash seed).
        cats = sorted({_top(str(c)) for c in items["category"]}, key=lambda c: (shown[c], c))
        target = cats[0]
        listed = {i["item_id"] for i in before["items"]}
        in_target = [i for i in items.index if _top(str(items.loc[i, "category"])) == target]
        buys = [i for i in in_target if i not in listed][:3]
        events = [
            {
                "event_id": f"e2e-{n}",
                "user_id": user,
                "item_id": item,
                "event_type": "purchase",
                "unit_price": float(items.loc[item, "base_price"]),
            }
            for n, item in enumerate(buys)
        ]
        logged = http.post("/v1/events", json={"events": events}, headers=Clients.hdr())
        assert logged.json()["accepted"] == len(buys)

        after = _recommend(http, user)
        assert after["strategy"] == "fold_in"
        assert after["items"] != before["items"]
        assert not {i["item_id"] for i in after["items"]} & set(buys)  # already bought
        # The category's other items climb the shopper's whole ranking. (Its count among the
        # first ten is too coarse on a 120-item store: three purchases move some categories
        # by a rank or two, under the buy-again and trending parts of the blend.)
        ranked_after = _recommend(http, user, k=len(items))["items"]
        others = [i for i in in_target if i not in buys]
        assert _mean_rank(ranked_after, others) < _mean_rank(ranked_before, others)

        # A good new bundle under `current` is loaded off the request path and swapped in.
        new = _copy_bundle(model.path, bundles, "bundle-two")
        set_current(bundles, new)
        _wait_for(lambda: _recommend(http, user)["model_version"] == "bundle-two")

        # A corrupted bundle is refused; bundle-two keeps serving.
        broken = _copy_bundle(new, bundles, "bundle-broken")
        factors = broken / "als_item_factors.npy"
        data = bytearray(factors.read_bytes())
        data[-1] ^= 0xFF
        factors.write_bytes(bytes(data))
        set_current(bundles, broken)
        refused = 'fairshelf_bundle_reloads_total{outcome="refused"} 1.0'
        # The refused count is exported from the start (at 0), so wait for it to move.
        _wait_for(lambda: refused in server.metrics.render().decode())
        metrics = http.get("/metrics").text
        assert refused in metrics
        assert _recommend(http, user)["model_version"] == "bundle-two"
        assert http.get("/v1/model", headers=Clients.hdr()).json()["model_version"] == "bundle-two"
        assert "sha256" in server.watcher.refused[broken.resolve()]  # type: ignore[union-attr]
        clients.close()


def test_serve_command_serves_until_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    bundles = tiny_bundles(tmp_path / "bundles")
    key = "sk-e2e-command-0000000000000"
    config = tmp_path / "fairshelf.toml"
    config.write_text(f'log_format = "json"\n[api_keys]\n"{key}" = "storefront"\n')
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fairshelf.cli.main",
            "serve",
            "--bundles",
            str(bundles),
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--db",
            f"sqlite:///{tmp_path / 'c.db'}",
            "--config",
            str(config),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if line.startswith("fairshelf serving:"):
                break
        else:
            raise AssertionError("".join(lines))
        port = int(lines[-1].split("http://")[1].split()[0].rsplit(":", 1)[1])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/readyz").status_code == 200
            resp = http.post(
                "/v1/recommend", json={"user_id": "x", "k": 3}, headers={"x-api-key": key}
            )
            assert resp.status_code == 200 and len(resp.json()["items"]) == 3
        # JSON log lines with request ids, and never the key.
        logged = "".join(lines)
        assert key not in logged
        assert any(
            json.loads(x).get("event") == "server_started" for x in lines if x.startswith("{")
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
