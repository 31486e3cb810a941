"""training.config and input cleaning: settings are validated, dropped rows are counted."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fairshelf.errors import DataValidationError, InvalidArgument
from training.config import TrainConfig, load_config
from training.data.synthetic import SyntheticStore
from training.prepare import data_fingerprint, prepare
from training.trainer import parse_cut


def test_json_and_toml_configs(tmp_path: Path) -> None:
    js = tmp_path / "c.json"
    js.write_text('{"als": {"factors_grid": [8]}, "evaluation": {"k_values": [5]}}')
    cfg = load_config(js, {"model": "als", "show_progress": None})
    assert cfg.als.factors_grid == [8] and cfg.evaluation.k_values == [5] and cfg.model == "als"
    assert cfg.show_progress is True  # None overrides are ignored
    toml = tmp_path / "c.toml"
    toml.write_text("[two_tower]\nepochs = 2\n")
    assert load_config(toml).two_tower.epochs == 2
    assert load_config(None) == TrainConfig()


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"als": {"factorz": [8]}}')
    with pytest.raises(InvalidArgument, match=r"als\.factorz"):
        load_config(bad)
    with pytest.raises(InvalidArgument, match="model"):
        load_config(None, {"model": "svd"})
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(InvalidArgument, match="cannot parse"):
        load_config(broken)
    with pytest.raises(InvalidArgument, match=r"eval_cut|YYYY"):
        parse_cut("yesterday-ish")


def test_prepare_counts_dropped_rows(tiny_store: SyntheticStore, tmp_path: Path) -> None:
    ev = tiny_store.events.copy()
    buys = ev.index[ev["event_type"] == "purchase"][:3]
    ev.loc[buys, "item_id"] = "NOT-IN-CATALOG"
    path = tmp_path / "events.parquet"
    ev.to_parquet(path, index=False)
    data = prepare(path, tiny_store.paths.items, TrainConfig())
    assert data.dropped["unknown_item"] == 3
    assert data.dropped["event_type_impression"] == int((ev["event_type"] == "impression").sum())
    assert len(data.events) + sum(data.dropped.values()) == len(ev)
    assert data.fingerprint != data_fingerprint(tiny_store.events, tiny_store.items)


def test_bad_input_file_is_named(tiny_store: SyntheticStore, tmp_path: Path) -> None:
    ev = tiny_store.events.copy()
    ev["event_type"] = ev["event_type"].astype(object)
    ev.loc[ev.index[5], "event_type"] = "teleport"
    path = tmp_path / "events.parquet"
    pd.DataFrame(ev).to_parquet(path, index=False)
    with pytest.raises(DataValidationError, match=r"events\.parquet"):
        prepare(path, tiny_store.paths.items, TrainConfig())
