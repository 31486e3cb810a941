"""``--invalid-rows`` on ``train`` and ``retrain`` (training.data.rejects through the CLI), and an
item without a usable price served: recommended, not priced, with a clear answer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from retrain_support import fairshelf, retrain_args, run_report, setup
from serving_support import TRAIN_CONFIG, Clients, running_server, tiny_store_dir

from recsys.bundle import load_bundle

pytestmark = pytest.mark.timeout(300)

# data row (1-based) -> (column, bad value, reason)
PLANTS = {
    7: ("user_id", "", "missing_user_id"),
    120: ("event_type", "teleport", "unknown_event_type"),
    2001: ("timestamp", "not-a-time", "bad_timestamp"),
    9000: ("unit_price", "-1", "negative_unit_price"),
}


def _planted_events(path: Path, frame: pd.DataFrame) -> None:
    raw = frame.astype("object").copy()
    raw["timestamp"] = frame["timestamp"].map(lambda t: t.isoformat())
    for row, (col, value, _) in PLANTS.items():
        raw.iloc[row - 1, raw.columns.get_loc(col)] = value
    raw.to_csv(path, index=False)


def test_train_skip_lists_exactly_the_planted_rows_and_keeps_unpriced_items(
    tmp_path: Path,
) -> None:
    store = tiny_store_dir()
    events = tmp_path / "events.csv"
    _planted_events(events, pd.read_parquet(store / "events.parquet"))
    items = pd.read_parquet(store / "items.parquet")
    unpriced = str(items.loc[5, "item_id"])
    items.loc[5, "base_price"] = 0.0
    items_path = tmp_path / "items.parquet"
    items.to_parquet(items_path, index=False)
    config = tmp_path / "config.json"
    config.write_text(pd.Series(TRAIN_CONFIG).to_json())
    bundles = tmp_path / "bundles"
    base = ["train", "--events", str(events), "--items", str(items_path), "--out", str(bundles)]
    base += ["--config", str(config), "--quiet"]

    failed = fairshelf(*base)
    assert failed.returncode == 2
    assert "row 7" in failed.stderr and "user_id" in failed.stderr
    assert not bundles.exists() or not list(bundles.iterdir())

    done = fairshelf(*base, "--invalid-rows", "skip")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "invalid rows set aside" in done.stdout
    bundle = load_bundle(bundles)
    rejects = pd.read_csv(bundle.path / "rejects.csv")
    dropped = rejects[rejects["action"] == "dropped"]
    assert dict(zip(dropped["row"], dropped["reason"], strict=True)) == {
        r: reason for r, (_, _, reason) in PLANTS.items()
    }
    kept = rejects[rejects["action"] == "kept_unpriced"]
    assert kept["reason"].tolist() == ["no_usable_base_price"] and kept["row"].tolist() == [6]
    dropped_rows = bundle.manifest.data.dropped_rows
    assert dropped_rows["invalid_dropped/bad_timestamp"] == 1
    assert dropped_rows["invalid_kept_unpriced/no_usable_base_price"] == 1
    report = (bundle.path / "report.md").read_text()
    assert "4 invalid row(s) skipped" in report and "left out of dynamic pricing" in report
    # The item stays in the catalogue with no price.
    row = bundle.items.set_index("item_id").loc[unpriced]
    assert pd.isna(row["base_price"])

    with running_server(bundles, tmp_path / "db.sqlite") as server:
        clients = Clients(server)
        try:
            similar = clients.http.get(f"/v1/items/{unpriced}/similar", headers=Clients.hdr())
            assert similar.status_code == 200, similar.text
            quote = clients.http.post(
                "/v1/prices/quote", json={"item_ids": [unpriced]}, headers=Clients.hdr()
            )
            assert quote.status_code == 404
            assert "no base price" in quote.json()["error"]["message"]
            other = str(items.loc[6, "item_id"])
            ok = clients.http.post(
                "/v1/prices/quote", json={"item_ids": [other]}, headers=Clients.hdr()
            )
            assert ok.status_code == 200, ok.text
        finally:
            clients.close()


def test_retrain_skip_writes_the_rejects_of_the_run(tmp_path: Path) -> None:
    s = setup(tmp_path)
    base = pd.read_parquet(s.base)
    _planted_events(s.base.with_suffix(".csv"), base)
    s.base = s.base.with_suffix(".csv")
    failed = fairshelf(*retrain_args(s))
    assert failed.returncode == 2 and "user_id" in failed.stderr
    done = fairshelf(*retrain_args(s, "--invalid-rows", "skip"))
    assert done.returncode == 0, done.stdout + done.stderr
    report = run_report(s.bundles)
    assert report["rejects"] == {
        f"dropped/{reason}": 1 for _, (_, _, reason) in sorted(PLANTS.items())
    }
    run_dir = sorted((s.bundles / "runs").iterdir())[-1]
    rejects = pd.read_csv(run_dir / "rejects.csv")
    assert sorted(rejects["row"]) == sorted(PLANTS)
