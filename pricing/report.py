"""The pricing report: per-category elasticities with intervals, as Markdown and a PNG.

Built for real sales logs such as UCI Online Retail, where the unit price of an item moves with
the quantity ordered (wholesale tiers) as well as over time. Tier prices would fool a demand
fit: a big order gets a low unit price *because* it is big, which looks like strong price
response. The report therefore

- takes as the price of an item in a period the highest unit price charged in it: the list
  price of the first tier, which tier discounts never raise (so only list-price changes over
  time identify the elasticity);
- counts all units sold in the period, with each order line capped at the item's 99th
  percentile line quantity, so that a handful of one-off bulk orders (some cancelled minutes
  later) do not dominate the fit;
- aggregates by week, which leaves enough sales per period for most items;
- counts the weeks between an item's first and last sale in which it sold nothing as zero
  sales at its last list price, since a sales log has no views to show them.

The fit is :func:`pricing.elasticity.fit_elasticities`; categories are summarised by the
random-effects mean of their items with a 95 % interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fairshelf.errors import InvalidArgument
from pricing.elasticity import (
    category_elasticities,
    fit_elasticities,
    observations_from_events,
)


@dataclass(frozen=True)
class PricingReport:
    """Where the report was written and the tables in it."""

    markdown: Path
    plot: Path
    items: pd.DataFrame
    categories: pd.DataFrame


def capped_purchases(events: pd.DataFrame, quantile: float = 0.99) -> pd.DataFrame:
    """Purchase events with each line's quantity capped at its item's ``quantile`` line size.

    Raises
    ------
    InvalidArgument
        ``quantile`` outside (0, 1], or events without the needed columns.
    """
    if not 0 < quantile <= 1:
        raise InvalidArgument(f"quantile must be in (0, 1], got {quantile}", field="quantile")
    need = ["item_id", "event_type", "timestamp", "quantity", "unit_price"]
    missing = [c for c in need if c not in events.columns]
    if missing:
        raise InvalidArgument(f"events lack column(s) {missing}", field=missing[0])
    buys = events.loc[events["event_type"] == "purchase", need].copy()
    buys["item_id"] = buys["item_id"].astype(str)
    cap = buys.groupby("item_id")["quantity"].transform(lambda q: q.quantile(quantile))
    buys["quantity"] = np.minimum(buys["quantity"].to_numpy(), np.ceil(cap.to_numpy()))
    return buys


def fill_zero_sale_periods(obs: pd.DataFrame) -> pd.DataFrame:
    """Add the periods between an item's first and last sale in which it sold nothing.

    A sales log without views or impressions does not show when an item was on offer but
    unsold; treating every period from its first to its last sale as on offer, at the last
    list price seen, restores the zero-sale periods the fit needs (without them it is
    truncated and biased toward zero).
    """
    periods = pd.Index(sorted(obs["period"].unique()))
    position = pd.Series(np.arange(len(periods)), index=periods)
    parts = []
    for (item_id, category), g in obs.groupby(["item_id", "category"], sort=True):
        pos = position[g["period"]].to_numpy()
        span = periods[pos.min() : pos.max() + 1]
        full = g.set_index("period").reindex(span)
        full["price"] = full["price"].ffill()
        full["units"] = full["units"].fillna(0.0)
        full["item_id"], full["category"] = str(item_id), str(category)
        parts.append(full.rename_axis("period").reset_index())
    cols = ["item_id", "category", "period", "price", "units"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else obs[cols]


def elasticity_tables(
    events: pd.DataFrame, items: pd.DataFrame, *, period: str = "W", min_obs: int = 30
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Item and category elasticity tables from a canonical sales log (see module docstring)."""
    buys = capped_purchases(events)
    obs = observations_from_events(buys, items, period=period)
    if obs.empty:
        raise InvalidArgument("no purchase with a known item in the events", field="events")
    obs = fill_zero_sale_periods(obs)
    fit = fit_elasticities(obs, min_obs=min_obs)
    return fit, category_elasticities(fit)


def _forest_plot(table: pd.DataFrame, path: Path, title: str) -> None:
    t = table.sort_values("elasticity")
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(t) + 1.5))
    y = np.arange(len(t))
    ax.errorbar(
        t["elasticity"],
        y,
        xerr=[t["elasticity"] - t["ci_low"], t["ci_high"] - t["elasticity"]],
        fmt="o",
        capsize=3,
    )
    ax.axvline(-1.0, color="grey", linestyle="--", linewidth=1)
    ax.axvline(0.0, color="grey", linewidth=0.5)
    ax.set_yticks(y, t["category"])
    ax.set_xlabel("price elasticity (95 % interval); dashed: unit elasticity")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_pricing_report(
    events: pd.DataFrame,
    items: pd.DataFrame,
    out_dir: Path | str,
    *,
    title: str = "Pricing report",
    period: str = "W",
    source_note: str = "",
) -> PricingReport:
    """Fit elasticities and write ``pricing_report.md`` and ``category_elasticity.png``.

    Parameters
    ----------
    events, items:
        Canonical events (purchases are used) and items (``item_id``, ``category``).
    out_dir:
        Directory to write into (created).
    title:
        Report heading.
    period:
        Aggregation period (pandas frequency; weekly by default).
    source_note:
        A sentence on where the data came from and what was dropped on import.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fit, cats = elasticity_tables(events, items, period=period)
    plot = out / "category_elasticity.png"
    if len(cats):
        _forest_plot(cats, plot, title)
    own = fit[fit["source"] == "item"]
    n_periods = int(fit["n_periods"].max()) if len(fit) else 0
    lines = [
        f"# {title}",
        "",
        f"Written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}. {source_note}".rstrip(),
        "",
        "## Method",
        "",
        "- Demand: `log E[units] = a_item + elasticity_item * log(price) + period effect`, "
        "Poisson pseudo-maximum likelihood (zero-sale periods count), quasi-Poisson standard "
        "errors, items shrunk toward their category by empirical Bayes.",
        f"- Period: `{period}`. Price of an item in a period: the highest unit price charged "
        "(the first-tier list price). Quantity tiers only ever lower a line's unit price, so "
        "bulk discounts do not enter the price series; only list-price changes over time "
        "identify the elasticity.",
        "- Units: all units sold in the period, each order line capped at the item's 99th "
        "percentile line quantity (one-off bulk orders, some cancelled minutes later, would "
        "otherwise dominate). Periods between an item's first and last sale without a sale "
        "count as zero sales at the last list price (the log has no views to show them).",
        "- Items that sold fewer than 30 units or never changed list price carry the "
        "category prior (`source = category`).",
        "- The period effects are shared by all categories. A category whose interval lies "
        "above zero (e.g. seasonal goods whose list price and demand both rise before a "
        "holiday) has a demand shift the controls did not separate from its price changes; "
        "do not price such a category from this table.",
        "",
        "## Data",
        "",
        f"- items with sales: {len(fit):,}; with their own estimate: {len(own):,}; "
        f"on the category prior: {len(fit) - len(own):,}",
        f"- units sold: {int(fit['n_obs'].sum()):,}; periods: up to {n_periods}",
        "",
        "## Elasticity by category (95 % intervals)",
        "",
        "| category | elasticity | 95 % interval | items (own estimate) | units |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in cats.sort_values("category").itertuples(index=False):
        lines.append(
            f"| {r.category} | {r.elasticity:.2f} | [{r.ci_low:.2f}, {r.ci_high:.2f}] | "
            f"{r.n_items} | {r.n_units:,} |"
        )
    if len(cats):
        lines += ["", f"![category elasticities]({plot.name})"]
    own_sorted = own.sort_values("n_obs", ascending=False).head(15)
    lines += [
        "",
        "## Best-measured items",
        "",
        "| item | category | elasticity | stderr | units | periods |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in own_sorted.itertuples(index=False):
        lines.append(
            f"| {r.item_id} | {r.category} | {r.elasticity:.2f} | {r.stderr:.2f} | "
            f"{r.n_obs:,} | {r.n_periods} |"
        )
    md = out / "pricing_report.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return PricingReport(markdown=md, plot=plot, items=fit, categories=cats)
