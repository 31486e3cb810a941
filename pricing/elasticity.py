"""Per-item price elasticity from sales history, shrunk toward the category when data is thin.

The demand model is log-log: ``log E[units_it] = a_i + b_i * log(price_it) + g_t (+ log
exposure_it)``, where ``b_i`` is the item's price elasticity, ``a_i`` its level and ``g_t`` a
period effect shared by every item (the time control: weekdays, seasons, traffic). It is fitted
by Poisson pseudo-maximum likelihood rather than OLS on ``log(units)`` because most
item-periods sell zero or one unit, and dropping zeros (or adding a constant) biases OLS toward
zero; PPML is consistent for the log-log slope whatever the distribution of units.

Standard errors come from the Fisher information with a quasi-Poisson dispersion factor.
Item slopes are then combined with a category prior by empirical Bayes
(DerSimonian-Laird between-item variance): items with plenty of sales keep their own estimate,
thin items are pulled toward their category, and items below ``min_obs`` units or without any
price variation receive the category prior itself (``source == "category"``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from fairshelf.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

OBSERVATION_COLUMNS = ("item_id", "category", "period", "price", "units")
RESULT_COLUMNS = (
    "item_id",
    "category",
    "elasticity",
    "stderr",
    "n_obs",
    "n_periods",
    "source",
    "raw_elasticity",
    "raw_stderr",
)

# Slopes outside this band are numerical runaways (e.g. an item that sold only at one end of
# its price range), not demand curves any shop has.
_SLOPE_BOUNDS = (-12.0, 4.0)


@dataclass(frozen=True)
class _Design:
    """The observations as integer-coded arrays, ready for the vectorised fit."""

    item_codes: IntArray
    period_codes: IntArray
    x: FloatArray  # log price
    y: FloatArray  # units
    offset: FloatArray  # log exposure (0 when not supplied)
    item_ids: npt.NDArray[np.object_]
    item_category: npt.NDArray[np.object_]
    n_periods_total: int


def _validate(observations: pd.DataFrame) -> None:
    missing = [c for c in OBSERVATION_COLUMNS if c not in observations.columns]
    if missing:
        raise InvalidArgument(
            f"observations lack column(s) {missing}; expected {list(OBSERVATION_COLUMNS)}",
            field=missing[0],
        )
    price = observations["price"].to_numpy(dtype=np.float64)
    units = observations["units"].to_numpy(dtype=np.float64)
    bad_price = np.flatnonzero(~(price > 0))
    if bad_price.size:
        row = int(bad_price[0])
        raise InvalidArgument(
            f"observations row {row}: price must be > 0, got {price[row]!r}", field="price"
        )
    bad_units = np.flatnonzero(~(units >= 0))
    if bad_units.size:
        row = int(bad_units[0])
        raise InvalidArgument(
            f"observations row {row}: units must be >= 0, got {units[row]!r}", field="units"
        )
    if "exposure" in observations.columns:
        exposure = observations["exposure"].to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~(exposure > 0))
        if bad.size:
            row = int(bad[0])
            raise InvalidArgument(
                f"observations row {row}: exposure must be > 0, got {exposure[row]!r}",
                field="exposure",
            )


def _design(observations: pd.DataFrame) -> _Design:
    item_codes, item_ids = pd.factorize(observations["item_id"].astype(str), sort=True)
    period_codes, periods = pd.factorize(observations["period"], sort=True)
    # An item's category is taken from its first row; the catalogue has one per item.
    first = (
        pd.DataFrame({"code": item_codes, "category": observations["category"].astype(str)})
        .drop_duplicates("code")
        .sort_values("code")
    )
    offset = (
        np.log(observations["exposure"].to_numpy(dtype=np.float64))
        if "exposure" in observations.columns
        else np.zeros(len(observations))
    )
    return _Design(
        item_codes=np.asarray(item_codes, dtype=np.int64),
        period_codes=np.asarray(period_codes, dtype=np.int64),
        x=np.log(observations["price"].to_numpy(dtype=np.float64)),
        y=observations["units"].to_numpy(dtype=np.float64),
        offset=offset,
        item_ids=np.asarray(item_ids, dtype=object),
        item_category=first["category"].to_numpy(dtype=object),
        n_periods_total=len(periods),
    )


def _sums(codes: IntArray, weights: FloatArray, n: int) -> FloatArray:
    return np.bincount(codes, weights=weights, minlength=n).astype(np.float64)


def _poisson_fit(
    d: _Design, active: npt.NDArray[np.bool_], iterations: int
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Alternating Newton fit of item (level, slope) pairs and shared period effects.

    Returns the slopes, their Fisher-information variances (before dispersion), the fitted
    means and the quasi-Poisson dispersion factor.
    """
    n_items = len(d.item_ids)
    n_periods = d.n_periods_total
    ic, pc = d.item_codes, d.period_codes
    # Centre log-price per item so level and slope are nearly orthogonal: Newton then
    # converges in a handful of steps and the 2x2 systems stay well conditioned.
    count = _sums(ic, np.ones_like(d.x), n_items)
    x_mean = _sums(ic, d.x, n_items) / np.maximum(count, 1.0)
    xc = d.x - x_mean[ic]
    has_variation = _sums(ic, xc * xc, n_items) > 1e-10
    y_item = _sums(ic, d.y, n_items)
    a = np.log(np.maximum(y_item, 0.5) / np.maximum(count, 1.0))
    b = np.where(has_variation, -1.0, 0.0)
    g = np.zeros(n_periods)
    for _ in range(iterations):
        eta = a[ic] + b[ic] * xc + g[pc] + d.offset
        mu = np.exp(np.clip(eta, -30.0, 30.0))
        r = d.y - mu
        s_aa = _sums(ic, mu, n_items)
        s_ab = _sums(ic, mu * xc, n_items)
        s_bb = _sums(ic, mu * xc * xc, n_items)
        g_a = _sums(ic, r, n_items)
        g_b = _sums(ic, r * xc, n_items)
        det = s_aa * s_bb - s_ab * s_ab
        ok = has_variation & (det > 1e-12)
        safe_det = np.where(ok, det, 1.0)
        step_a = np.where(ok, (s_bb * g_a - s_ab * g_b) / safe_det, g_a / np.maximum(s_aa, 1e-12))
        step_b = np.where(ok, (s_aa * g_b - s_ab * g_a) / safe_det, 0.0)
        # Damped steps: a full Newton step from a poor start can overshoot on tiny items.
        a = a + np.clip(step_a, -2.0, 2.0)
        b = np.clip(b + np.clip(step_b, -2.0, 2.0), *_SLOPE_BOUNDS)
        # Closed-form Poisson update of the period effects given the item parameters.
        base = np.exp(np.clip(a[ic] + b[ic] * xc + d.offset, -30.0, 30.0))
        num = _sums(pc, d.y, n_periods)
        den = _sums(pc, base, n_periods)
        g = np.log(np.maximum(num, 1e-9) / np.maximum(den, 1e-12))
        g -= g.mean()
        if np.max(np.abs(step_b[active]), initial=0.0) < 1e-7:
            break
    eta = a[ic] + b[ic] * xc + g[pc] + d.offset
    mu = np.exp(np.clip(eta, -30.0, 30.0))
    s_aa = _sums(ic, mu, n_items)
    s_ab = _sums(ic, mu * xc, n_items)
    s_bb = _sums(ic, mu * xc * xc, n_items)
    det = s_aa * s_bb - s_ab * s_ab
    var_b = np.where(has_variation & (det > 1e-12), s_aa / np.where(det > 1e-12, det, 1.0), np.inf)
    pearson = float(np.sum((d.y - mu) ** 2 / np.maximum(mu, 1e-9)))
    dof = max(len(d.y) - 2 * n_items - n_periods, 1)
    # Over-dispersion (more variance than Poisson) widens the intervals; never narrows them.
    phi = max(1.0, pearson / dof)
    return b, var_b, mu, phi


def _dersimonian_laird(est: FloatArray, var: FloatArray) -> tuple[float, float, float]:
    """Prior mean, its variance and the between-item variance tau^2 for one group."""
    w = 1.0 / var
    mean_fe = float(np.sum(w * est) / np.sum(w))
    q = float(np.sum(w * (est - mean_fe) ** 2))
    c = float(np.sum(w) - np.sum(w * w) / np.sum(w))
    tau2 = max(0.0, (q - (len(est) - 1)) / c) if c > 0 else 0.0
    # A floor on tau^2 keeps a well-measured item from being flattened onto its category
    # when the category happens to look homogeneous in a small sample.
    tau2 = max(tau2, 0.01)
    w_re = 1.0 / (var + tau2)
    mean = float(np.sum(w_re * est) / np.sum(w_re))
    return mean, 1.0 / float(np.sum(w_re)), tau2


def fit_elasticities(
    observations: pd.DataFrame,
    *,
    min_obs: int = 30,
    iterations: int = 50,
    default_elasticity: float = -1.5,
    default_stderr: float = 1.0,
) -> pd.DataFrame:
    """Estimate each item's price elasticity with a standard error.

    Parameters
    ----------
    observations:
        One row per item and period with columns ``item_id``, ``category``, ``period`` (any
        sortable label: a day, a week), ``price`` (> 0, the price in force in that period) and
        ``units`` (>= 0, units sold; include periods with zero sales). An optional
        ``exposure`` column (> 0, e.g. product views) enters as an offset. No shopper columns:
        the fit is on aggregates.
    min_obs:
        Items that sold fewer units than this (or never changed price) get the category prior
        instead of their own estimate.
    iterations:
        Maximum alternating Newton iterations.
    default_elasticity, default_stderr:
        Prior used when no item at all has enough data to estimate a category or global prior.

    Returns
    -------
    pandas.DataFrame
        One row per item, sorted by ``item_id``: ``item_id``, ``category``, ``elasticity``
        (posterior mean), ``stderr`` (posterior standard deviation), ``n_obs`` (units sold),
        ``n_periods`` (observed periods), ``source`` (``"item"`` or ``"category"``),
        ``raw_elasticity`` and ``raw_stderr`` (the unshrunk item fit; NaN when none).

    Raises
    ------
    InvalidArgument
        A required column is missing, a price is not positive or a unit count is negative;
        the message names the column and row.
    """
    _validate(observations)
    if len(observations) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in RESULT_COLUMNS})
    if len(observations) >= 100 and not (observations["units"] == 0).any():
        # Periods without a sale carry the information that a high price sold nothing;
        # without them the fit is truncated and every elasticity is pulled toward zero.
        warnings.warn(
            "elasticity observations contain no zero-sale periods: elasticities will be biased "
            "toward zero; build them with pricing.elasticity.observations_from_events",
            UserWarning,
            stacklevel=2,
        )
    d = _design(observations)
    n_items = len(d.item_ids)
    units = _sums(d.item_codes, d.y, n_items)
    periods = _sums(d.item_codes, np.ones_like(d.y), n_items)
    active = units > 0
    b, var_b, _, phi = _poisson_fit(d, active, iterations)
    var_b = var_b * phi
    fitted = active & np.isfinite(var_b) & (units >= min_obs)
    at_bound = (b <= _SLOPE_BOUNDS[0] + 1e-9) | (b >= _SLOPE_BOUNDS[1] - 1e-9)
    fitted &= ~at_bound

    elasticity = np.empty(n_items)
    stderr = np.empty(n_items)
    source = np.empty(n_items, dtype=object)
    cats = d.item_category
    if fitted.any():
        g_mean, g_var, g_tau2 = _dersimonian_laird(b[fitted], var_b[fitted])
    else:
        g_mean, g_var, g_tau2 = default_elasticity, default_stderr**2, 0.0
    for cat in np.unique(cats):
        in_cat = cats == cat
        usable = in_cat & fitted
        if usable.sum() >= 2:
            m, m_var, tau2 = _dersimonian_laird(b[usable], var_b[usable])
        else:
            m, m_var, tau2 = g_mean, g_var, g_tau2
        # Posterior of each well-measured item: precision-weighted blend with the prior.
        prior_var = tau2 + m_var
        post_prec = 1.0 / var_b[usable] + 1.0 / prior_var
        elasticity[usable] = (b[usable] / var_b[usable] + m / prior_var) / post_prec
        stderr[usable] = np.sqrt(1.0 / post_prec)
        source[usable] = "item"
        thin = in_cat & ~fitted
        elasticity[thin] = m
        # A thin item is a new draw from its category: its uncertainty is the spread of
        # items in the category plus the uncertainty of the category mean.
        stderr[thin] = np.sqrt(prior_var)
        source[thin] = "category"
    raw_ok = active & np.isfinite(var_b)
    return pd.DataFrame(
        {
            "item_id": d.item_ids.astype(str),
            "category": cats.astype(str),
            "elasticity": elasticity,
            "stderr": stderr,
            "n_obs": units.astype(np.int64),
            "n_periods": periods.astype(np.int64),
            "source": source.astype(str),
            "raw_elasticity": np.where(raw_ok, b, np.nan),
            "raw_stderr": np.where(raw_ok, np.sqrt(np.where(raw_ok, var_b, 0.0)), np.nan),
        }
    )


def category_elasticities(fitted: pd.DataFrame, *, z: float = 1.96) -> pd.DataFrame:
    """Summarise an item table into one row per category with a confidence interval.

    The category elasticity is the precision-weighted random-effects mean of the items that
    carry their own estimate (``source == "item"``), with its standard error.

    Parameters
    ----------
    fitted:
        Output of :func:`fit_elasticities`.
    z:
        Normal quantile of the interval (1.96 for 95 %).

    Returns
    -------
    pandas.DataFrame
        ``category``, ``elasticity``, ``stderr``, ``ci_low``, ``ci_high``, ``n_items``
        (with their own estimate), ``n_units``.
    """
    rows = []
    for cat, grp in fitted.groupby("category", sort=True):
        own = grp[(grp["source"] == "item") & grp["raw_stderr"].notna()]
        if len(own) >= 2:
            m, m_var, _ = _dersimonian_laird(
                own["raw_elasticity"].to_numpy(dtype=np.float64),
                own["raw_stderr"].to_numpy(dtype=np.float64) ** 2,
            )
            se = float(np.sqrt(m_var))
        elif len(own) == 1:
            m = float(own["raw_elasticity"].iloc[0])
            se = float(own["raw_stderr"].iloc[0])
        else:
            continue
        rows.append(
            {
                "category": str(cat),
                "elasticity": m,
                "stderr": se,
                "ci_low": m - z * se,
                "ci_high": m + z * se,
                "n_items": len(own),
                "n_units": int(grp["n_obs"].sum()),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["category", "elasticity", "stderr", "ci_low", "ci_high", "n_items", "n_units"],
    )


def observations_from_events(
    events: pd.DataFrame,
    items: pd.DataFrame,
    *,
    period: str = "D",
    exposure_event: str | None = None,
) -> pd.DataFrame:
    """Aggregate purchase events into the per item and period table :func:`fit_elasticities` reads.

    The price of a period is the highest unit price charged for the item in it: quantity-tier
    discounts only ever lower a line's price, so the highest price is the list price in force,
    and tier discounts given to large orders do not masquerade as a demand response. Periods in
    which an item was shown (any event) but not bought count as zero sales at the last known
    price, so that the fit sees the periods when a high price sold nothing.

    Parameters
    ----------
    events:
        Canonical events (``item_id``, ``event_type``, ``timestamp``, ``quantity``,
        ``unit_price``). Shopper columns are dropped before anything else.
    items:
        Catalogue with ``item_id`` and ``category``.
    period:
        A pandas frequency for the period (``"D"`` day, ``"W"`` week).
    exposure_event:
        When given (e.g. ``"view"``), the count of these events per item and period becomes
        the ``exposure`` column and periods without any are dropped: demand is then modelled
        per view, which removes traffic noise from the fit.

    Returns
    -------
    pandas.DataFrame
        ``item_id``, ``category``, ``period``, ``price``, ``units`` (and ``exposure``).
    """
    need = ["item_id", "event_type", "timestamp", "quantity", "unit_price"]
    missing = [c for c in need if c not in events.columns]
    if missing:
        raise InvalidArgument(f"events lack column(s) {missing}", field=missing[0])
    ev = events[need].copy()
    ev["item_id"] = ev["item_id"].astype(str)
    ev = ev[ev["unit_price"] > 0]
    ev["period"] = ev["timestamp"].dt.tz_localize(None).dt.to_period(period).dt.start_time
    buys = ev[ev["event_type"] == "purchase"]
    sold = buys.groupby(["item_id", "period"], sort=True).agg(
        units=("quantity", "sum"), price=("unit_price", "max")
    )
    shown = ev.groupby(["item_id", "period"], sort=True).agg(shown_price=("unit_price", "max"))
    obs = shown.join(sold, how="outer").reset_index()
    obs["price"] = obs["price"].fillna(obs["shown_price"])
    obs["units"] = obs["units"].fillna(0.0)
    obs = obs.drop(columns=["shown_price"])
    cats = items[["item_id", "category"]].copy()
    cats["item_id"] = cats["item_id"].astype(str)
    obs = obs.merge(cats, on="item_id", how="inner")
    columns = ["item_id", "category", "period", "price", "units"]
    if exposure_event is not None:
        seen = ev[ev["event_type"] == exposure_event].groupby(["item_id", "period"]).size()
        exposure = seen.rename("exposure").reset_index()
        obs = obs.merge(exposure, on=["item_id", "period"], how="inner")
        columns.append("exposure")
    return obs[columns].reset_index(drop=True)
