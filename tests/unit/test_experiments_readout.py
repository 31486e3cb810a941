"""experiments.attribution, experiments.readout and experiments.render on small known tables."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.attribution import attribute
from experiments.readout import build_readout
from experiments.render import to_markdown, write_report
from fairshelf.errors import InvalidArgument

T0 = pd.Timestamp("2026-03-01", tz="UTC")


Row = dict[str, object]


def _exposure(user: str, variant: str, hours: float, items: list[str]) -> Row:
    at = T0 + pd.Timedelta(hours=hours)
    return dict(user_id=user, variant=variant, ts=at, items=items, latency_us=500,
                strategy="trained_vector")  # fmt: skip


def _event(i: int, user: str, item: str, kind: str, hours: float, price: float = 10.0) -> Row:
    at = T0 + pd.Timedelta(hours=hours)
    return dict(event_id=f"e{i}", user_id=user, item_id=item, event_type=kind, timestamp=at,
                quantity=1, unit_price=price)  # fmt: skip


def test_attribution_counts_after_first_exposure_and_credits_shown_items_in_window() -> None:
    exposures = pd.DataFrame(
        [
            _exposure("u1", "a", 0, ["x", "y"]),
            _exposure("u1", "b", 5, ["z"]),
            _exposure("u2", "b", 1, ["x"]),
        ]
    )
    events = pd.DataFrame(
        [
            _event(1, "u1", "x", "purchase", -24, 7.0),  # history: the covariate
            _event(2, "u1", "x", "click", 1),  # shown item, in window
            _event(3, "u1", "x", "purchase", 2, 12.0),
            _event(4, "u1", "q", "purchase", 3, 5.0),  # not shown: counts, not credited
            _event(5, "u2", "x", "click", 1 + 24 * 9),  # shown 9 days ago: outside 7 days
            _event(6, "u3", "x", "purchase", 2),  # never exposed
        ]
    )
    units = attribute(exposures, events, window=timedelta(days=7)).set_index("user_id")
    assert list(units.index) == ["u1", "u2"]
    u1, u2 = units.loc["u1"], units.loc["u2"]
    assert u1["variant"] == "a" and u1["exposures"] == 2  # stays in its first variant
    assert (u1["orders"], u1["revenue"], u1["clicks"]) == (2, 17.0, 1)
    assert (u1["rec_shown"], u1["rec_clicks"], u1["rec_orders"], u1["rec_revenue"]) == (3, 1, 1, 12)
    assert (u1["pre_orders"], u1["pre_revenue"]) == (1, 7.0)
    assert (u2["clicks"], u2["rec_clicks"]) == (1, 0)


def _experiment(seed: int, n: int = 400, buy_b: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    exps, evs = [], []
    for k in range(n):
        user, variant = f"u{k}", "control" if k % 2 else "treatment"
        hours = float(rng.uniform(0, 72))
        exps.append(_exposure(user, variant, hours, ["i1", "i2", "i3"]))
        if rng.random() < 0.5:
            evs.append(_event(4 * k, user, "i9", "purchase", hours - 48, float(rng.gamma(2, 10))))
        if rng.random() < (buy_b if variant == "treatment" else 0.2):
            evs.append(_event(4 * k + 1, user, "i1", "click", hours + 1))
            evs.append(
                _event(4 * k + 2, user, "i1", "purchase", hours + 2, float(rng.gamma(2, 10)))
            )
    return pd.DataFrame(exps), pd.DataFrame(evs)


def test_readout_finds_the_planted_conversion_effect_and_is_free_of_nan(tmp_path: Path) -> None:
    exposures, events = _experiment(1)
    r = build_readout(
        exposures, events, experiment="exp", shares={"control": 0.5, "treatment": 0.5}
    )
    assert r.control == "control" and not r.srm.mismatch
    rows = {m.metric: m for m in r.metrics}
    conv = rows["conversion"]
    assert conv.effect is not None and conv.effect.ci_low < 0.1 < conv.effect.ci_high
    assert conv.cuped is not None and conv.p_holm is not None
    assert rows["rec_ctr"].value == pytest.approx(rows["conversion"].value / 3, rel=1e-12)
    assert {p.metric for p in r.path} >= {"conversion", "revenue_per_shopper"}
    text = json.dumps(r.to_dict(), allow_nan=False)
    assert "NaN" not in text
    for fmt in ("md", "json", "html"):
        files = write_report(r, tmp_path / fmt, fmt)  # type: ignore[arg-type]
        assert files.report.stat().st_size > 0 and files.effects_png is not None
    assert "nan" not in to_markdown(r).lower()


def test_a_metric_without_data_gets_a_note_not_a_nan() -> None:
    exposures, events = _experiment(2, n=60, buy_b=0.0)
    events = events[events["event_type"] != "purchase"]  # nobody bought: no AOV anywhere
    r = build_readout(
        exposures, events, experiment="exp", shares={"control": 0.5, "treatment": 0.5}
    )
    aov = next(m for m in r.metrics if m.metric == "aov")
    assert aov.effect is None and aov.note is not None and "no orders" in aov.note
    assert "n/a" in to_markdown(r) and "nan" not in to_markdown(r).lower()
    json.dumps(r.to_dict(), allow_nan=False)


def test_bad_windows_and_single_variants_are_refused_clearly() -> None:
    exposures, events = _experiment(3, n=20)
    with pytest.raises(InvalidArgument, match="no exposures"):
        build_readout(exposures.iloc[:0], events, experiment="exp", shares={})
    only = exposures[exposures["variant"] == "control"]
    with pytest.raises(InvalidArgument, match="single variant"):
        build_readout(only, events, experiment="exp", shares={"control": 1.0})
    with pytest.raises(InvalidArgument, match="control variant 'zzz'"):
        build_readout(exposures, events, experiment="exp", shares={}, control="zzz")


def test_srm_flags_a_split_far_from_the_configured_one() -> None:
    exposures, events = _experiment(4, n=400)
    r = build_readout(
        exposures, events, experiment="exp", shares={"control": 0.8, "treatment": 0.2}
    )
    assert r.srm.mismatch and any("sample ratio mismatch" in n for n in r.notes)
