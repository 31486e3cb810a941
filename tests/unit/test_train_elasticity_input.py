"""training.elasticity_input: no shopper column reaches the pricing fit; elasticities written."""

from __future__ import annotations

import pandas as pd

from training.config import TrainConfig
from training.data.synthetic import SyntheticStore
from training.elasticity_input import PUBLIC_EVENT_COLUMNS, elasticity_table, public_events
from training.fit import Catalog


def test_public_events_drop_shopper_columns(tiny_store: SyntheticStore) -> None:
    ev = tiny_store.events
    until = pd.Timestamp(ev["timestamp"].sort_values().iloc[len(ev) // 2])
    out = public_events(ev, until)
    assert tuple(out.columns) == PUBLIC_EVENT_COLUMNS
    assert not {"user_id", "session_id", "region", "channel"} & set(out.columns)
    assert out["timestamp"].max() <= until


def test_elasticity_table_has_one_row_per_sold_item(tiny_store: SyntheticStore) -> None:
    catalog = Catalog.build(tiny_store.items, TrainConfig().two_tower.price_bands)
    ev = tiny_store.events
    table, note = elasticity_table(ev, catalog, ev["timestamp"].max())
    assert note is None and table is not None
    assert {"item_id", "elasticity", "stderr", "n_obs", "source"} <= set(table.columns)
    assert set(table["item_id"]) <= set(catalog.item_ids)
    assert table["item_id"].is_unique
    assert pd.api.types.is_float_dtype(table["elasticity"])
