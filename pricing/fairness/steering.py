"""Context-steering audits: is the storefront choosing the "public" context by shopper?

Rule G3 compares prices within one public context, so a storefront that labels loyal shoppers
with a pricier region passes it while existing customers pay more. Two audits over the quote
log close that gap; both are pure functions over arrays (the report layer feeds them).

**Context steering (stated test).** Null hypothesis: within each item and price epoch, the
context a quote was priced in (region, competitor prices, promotions) does not depend on
whether the shopper is an existing customer (long tenure or frequent) or a new one. Within a
stratum *s* = (item, epoch) with ``n_e`` existing and ``n_n`` new quotes, ``D_s`` is the mean
list price of the existing minus that of the new. The strata of one UTC day are combined with
Cochran–Mantel–Haenszel weights ``w_s = n_e n_n / (n_e + n_n)``::

    T = Σ_s w_s D_s = Σ_i a_i (x_i − x̄_s),   a_i = w_s / n_e or −w_s / n_n

Under the null ``E[T] = 0``. The storefront hands a context to a *shopper*, not to a quote,
so the shopper (a day pseudonym; an anonymous quote stands alone) is the unit of the variance:
with ``r_i = a_i (x_i − x̄_s) √(n_s / (n_s − 1))`` and ``K`` shoppers,

    Var(T) = K / (K − 1) · Σ_k (Σ_{i of shopper k} r_i)²,   z = T / √Var(T)

and the one-sided p-value is ``1 − Φ(z)``. (With one quote per shopper this is the
large-sample form of the permutation test that shuffles the two labels within each stratum;
counting a shopper's quotes as independent would understate the variance several-fold.) A day
is a finding when **p < α / (number of days tested)** with ``α =`` :data:`ALPHA` (Bonferroni
over the audit window's days) **and** the price gap attributable to the steering,
``Σ w_s D_s / Σ w_s x̄_s``, is at least :data:`MIN_RELATIVE_GAP`. Prices are compared only
within an item and epoch, so real regional price differences count only when the regions are
handed out by tenure.

**Region hopping.** A shopper (day-scoped pseudonym, see
:func:`pricing.fairness.caller_context.day_ref`) quoted under two or more regions within one
UTC day is a finding: a shopper's market does not change by the hour, and a storefront that
moves one between regions is choosing their price.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from pricing.fairness.quotes import Quote

ALPHA: Final[float] = 0.001
MIN_RELATIVE_GAP: Final[float] = 0.005
STEERING_RULE: Final[str] = "G4-steering"
HOPPING_RULE: Final[str] = "G4-hopping"

#: Tenure classes of the steering test (``ShopperGroup.is_existing`` / ``is_new``).
EXISTING, NEW, OTHER = 1, 0, -1

_Floats = npt.NDArray[np.float64]
_Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DaySteering:
    """The stratified test for one UTC day.

    ``strata`` counts the (item, epoch) groups with both classes and more than one list
    price; ``gap`` is the weighted price gap (currency) and ``relative_gap`` the same over the
    weighted mean price; ``top`` holds the strata that contribute most, as ``(item_id, epoch,
    existing mean, new mean, existing quotes, new quotes)``.
    """

    day: str
    strata: int
    z: float
    p_value: float
    gap: float
    relative_gap: float
    top: tuple[tuple[str, int, float, float, int, int], ...]


@dataclass(frozen=True)
class SteeringFinding:
    """One finding of the steering or hopping audit, with example quote ids."""

    rule: str
    key: str
    message: str
    examples: tuple[str, ...]


@dataclass
class SteeringSummary:
    """What the steering and hopping audits found, and every day's test."""

    days: list[DaySteering] = field(default_factory=list)
    steering: list[SteeringFinding] = field(default_factory=list)
    hopping: list[SteeringFinding] = field(default_factory=list)
    threshold: float = ALPHA

    @property
    def findings(self) -> list[SteeringFinding]:
        """Steering findings, then hopping findings."""
        return self.steering + self.hopping


def _phi_upper(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def steering_test(
    stratum: _Ints,
    day: _Ints,
    price: _Floats,
    tenure_class: _Ints,
    shopper: _Ints,
    *,
    n_days: int | None = None,
) -> list[tuple[int, float, float, float, float, int, _Floats]]:
    """The stratified test of the module docstring, on arrays (one entry per quote).

    Parameters
    ----------
    stratum:
        Stratum index (one per item and epoch) of each quote, ``0..S-1``.
    day:
        Day index of each quote's stratum (a stratum lies in one day).
    price:
        List price of each quote.
    tenure_class:
        :data:`EXISTING`, :data:`NEW` or :data:`OTHER` (ignored).
    shopper:
        Shopper index of each quote (a shopper-day; an anonymous quote has its own index):
        the unit the storefront assigns a context to, hence the unit of the variance.
    n_days:
        Number of days (default: ``day.max() + 1``).

    Returns
    -------
    list
        Per day with at least one informative stratum: ``(day, z, p, gap, relative_gap,
        strata, contribution)`` where ``contribution[s] = w_s D_s`` for every stratum.
    """
    keep = tenure_class != OTHER
    s, d, x, who = stratum[keep], day[keep], price[keep], shopper[keep]
    is_e = tenure_class[keep] == EXISTING
    e_f = is_e.astype(np.float64)
    n_strata = int(stratum.max()) + 1 if stratum.size else 0
    n_e = np.bincount(s, weights=e_f, minlength=n_strata)
    n_all = np.bincount(s, minlength=n_strata).astype(np.float64)
    n_n = n_all - n_e
    sum_e = np.bincount(s, weights=x * e_f, minlength=n_strata)
    sum_all = np.bincount(s, weights=x, minlength=n_strata)
    sum_sq = np.bincount(s, weights=x * x, minlength=n_strata)
    # The day of each stratum (all of its quotes share it).
    s_day = np.zeros(n_strata, dtype=np.int64)
    s_day[s] = d
    ok = (n_e > 0) & (n_n > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_all = np.where(n_all > 0, sum_all / n_all, 0.0)
        var = np.where(n_all > 1, (sum_sq - n_all * mean_all**2) / (n_all - 1), 0.0)
        # Equal prices leave rounding noise, not variance.
        informative = ok & (var > 1e-12 * np.maximum(mean_all**2, 1.0))
        d_s = np.where(informative, sum_e / n_e - (sum_all - sum_e) / n_n, 0.0)
        w = np.where(informative, n_e * n_n / n_all, 0.0)
        # T = sum over quotes of a_i (x_i - mean of its stratum), a_i = w/n_e or -w/n_n.
        a = np.where(is_e, w[s] / n_e[s], -w[s] / n_n[s])
    a = np.where(informative[s], a, 0.0)
    # Residuals about an estimated stratum mean are smaller than the deviations they stand
    # for by a factor (n - 1) / n in square, as in a sample variance: scaled back.
    with np.errstate(divide="ignore", invalid="ignore"):
        inflate = np.where(n_all > 1, np.sqrt(n_all / (n_all - 1)), 0.0)
    residual = a * (x - mean_all[s]) * inflate[s]
    contribution = w * d_s
    days = int(s_day.max()) + 1 if n_days is None and n_strata else (n_days or 0)
    t = np.bincount(s_day, weights=contribution, minlength=days)
    # A shopper's quotes share their context, so they are one unit of the variance: the
    # residuals are summed per shopper before squaring (a shopper-clustered variance).
    n_who = int(who.max()) + 1 if who.size else 0
    per_who = np.bincount(who, weights=residual, minlength=n_who)
    who_day = np.zeros(n_who, dtype=np.int64)
    who_day[who] = d
    v = np.bincount(who_day, weights=per_who**2, minlength=days)
    k = np.bincount(who_day, weights=(per_who != 0).astype(np.float64), minlength=days)
    w_sum = np.bincount(s_day, weights=w, minlength=days)
    w_price = np.bincount(s_day, weights=w * mean_all, minlength=days)
    counts = np.bincount(s_day, weights=informative.astype(np.float64), minlength=days)
    out = []
    for day_k in range(days):
        if v[day_k] <= 0 or k[day_k] < 2:
            continue
        z = float(t[day_k] / math.sqrt(v[day_k] * k[day_k] / (k[day_k] - 1)))
        out.append(
            (
                day_k,
                z,
                _phi_upper(z),
                float(t[day_k] / w_sum[day_k]),
                float(t[day_k] / w_price[day_k]),
                int(counts[day_k]),
                contribution,
            )
        )
    return out


class SteeringInputs:
    """Collects, while another audit streams the quote log, what the steering audits need.

    Use :meth:`watch` around the quote iterator handed to
    :func:`~pricing.fairness.consistency.audit_quotes`, then :meth:`audit`.
    """

    def __init__(self) -> None:
        self._strata: dict[tuple[str, int], int] = {}
        self._days: dict[str, int] = {}
        self._stratum_day: list[int] = []
        self.stratum: list[int] = []
        self.price: list[float] = []
        self.tenure: list[int] = []
        self.quote_ids: list[str] = []
        self.shopper: list[int] = []
        self._shoppers: dict[tuple[str, str], int] = {}
        self._next_shopper = 0
        # (day, shopper_ref) -> region -> first quote id
        self.regions: dict[tuple[str, str], dict[str, str]] = {}
        self._region_of: dict[str, str] = {}

    def observe(self, q: Quote) -> None:
        """Record one quote."""
        day = q.quoted_at[:10]
        key = (q.item_id, q.epoch)
        s = self._strata.get(key)
        if s is None:
            s = self._strata[key] = len(self._strata)
            d = self._days.get(day)
            if d is None:
                d = self._days[day] = len(self._days)
            self._stratum_day.append(d)
        self.stratum.append(s)
        self.price.append(q.list_price)
        g = q.group
        self.tenure.append(EXISTING if g.is_existing else NEW if g.is_new else OTHER)
        self.quote_ids.append(q.quote_id)
        # An anonymous quote is a shopper of its own.
        who = self._shoppers.get((day, q.shopper_ref)) if q.shopper_ref else None
        if who is None:
            who = self._next_shopper
            self._next_shopper += 1
            if q.shopper_ref:
                self._shoppers[(day, q.shopper_ref)] = who
        self.shopper.append(who)
        if q.shopper_ref:
            seen = self.regions.setdefault((day, q.shopper_ref), {})
            region = self._region_of.get(q.context_key)
            if region is None:
                region = self._region_of[q.context_key] = _region_of(q.context_key)
            if region not in seen:
                seen[region] = q.quote_id

    def watch(self, quotes: Iterable[Quote]) -> Iterator[Quote]:
        """Yield ``quotes`` unchanged, recording each."""
        for q in quotes:
            self.observe(q)
            yield q

    def audit(self, *, alpha: float = ALPHA, min_gap: float = MIN_RELATIVE_GAP) -> SteeringSummary:
        """Run both audits over what was recorded.

        Parameters
        ----------
        alpha:
            Family-wise error rate of the steering test over the window's days.
        min_gap:
            Smallest relative price gap that is a finding.
        """
        summary = SteeringSummary(threshold=alpha)
        stratum = np.asarray(self.stratum, dtype=np.int64)
        if stratum.size:
            s_day = np.asarray(self._stratum_day, dtype=np.int64)
            day = s_day[stratum]
            price = np.asarray(self.price, dtype=np.float64)
            tenure = np.asarray(self.tenure, dtype=np.int64)
            shopper = np.asarray(self.shopper, dtype=np.int64)
            results = steering_test(stratum, day, price, tenure, shopper, n_days=len(self._days))
            names = {v: k for k, v in self._days.items()}
            items = {v: k for k, v in self._strata.items()}
            bound = alpha / max(1, len(results))
            for k, z, p, gap, rel, n, contribution in results:
                top = self._top(stratum, price, tenure, contribution, s_day == k, items)
                summary.days.append(DaySteering(names[k], n, z, p, gap, rel, top))
                if p < bound and rel >= min_gap:
                    summary.steering.append(
                        self._steering_finding(
                            names[k], z, p, (alpha, bound), gap, rel, n, top, stratum
                        )
                    )
        for (day_name, ref), regions in sorted(self.regions.items()):
            if len(regions) > 1:
                listed = ", ".join(sorted(r or "(none)" for r in regions))
                summary.hopping.append(
                    SteeringFinding(
                        HOPPING_RULE,
                        f"{day_name}/{ref}",
                        f"shopper {ref} (day pseudonym) was quoted under {len(regions)} regions "
                        f"on {day_name} ({listed}): a storefront that moves a shopper between "
                        "markets is choosing their price (rule G4, region hopping)",
                        tuple(regions[r] for r in sorted(regions)),
                    )
                )
        return summary

    def _top(
        self,
        stratum: _Ints,
        price: _Floats,
        tenure: _Ints,
        contribution: _Floats,
        of_day: npt.NDArray[np.bool_],
        items: dict[int, tuple[str, int]],
    ) -> tuple[tuple[str, int, float, float, int, int], ...]:
        order = [int(s) for s in np.argsort(-contribution) if of_day[s] and contribution[s] > 0]
        out = []
        for s in order[:5]:
            mask = stratum == s
            e = mask & (tenure == EXISTING)
            n = mask & (tenure == NEW)
            item_id, epoch = items[s]
            out.append(
                (
                    item_id,
                    epoch,
                    float(price[e].mean()),
                    float(price[n].mean()),
                    int(e.sum()),
                    int(n.sum()),
                )
            )
        return tuple(out)

    def _steering_finding(
        self,
        day: str,
        z: float,
        p: float,
        thresholds: tuple[float, float],
        gap: float,
        rel: float,
        n: int,
        top: tuple[tuple[str, int, float, float, int, int], ...],
        stratum: _Ints,
    ) -> SteeringFinding:
        alpha, bound = thresholds
        examples: tuple[str, ...] = ()
        if top:
            # The priciest existing quote and the cheapest new one in the worst stratum.
            s = self._strata[(top[0][0], top[0][1])]
            idx = np.flatnonzero(stratum == s)
            e = [i for i in idx if self.tenure[i] == EXISTING]
            nn = [i for i in idx if self.tenure[i] == NEW]
            hi = max(e, key=lambda i: self.price[i])
            lo = min(nn, key=lambda i: self.price[i])
            examples = (self.quote_ids[hi], self.quote_ids[lo])
        worst = (
            f"; largest in item {top[0][0]!r} epoch {top[0][1]}: existing {top[0][2]:.2f} vs new "
            f"{top[0][3]:.2f} on average ({top[0][4]} and {top[0][5]} quotes)"
            if top
            else ""
        )
        return SteeringFinding(
            STEERING_RULE,
            day,
            f"on {day} existing customers were quoted {rel:.1%} ({gap:.2f}) more than new ones "
            f"for the same items and epochs, because they were quoted under pricier public "
            f"contexts (region, promotions) more often: stratified test over {n} "
            f"(item, epoch) groups, z = {z:.2f}, p = {p:.2g} < {bound:.2g} (alpha {alpha:g} "
            f"over the window's days){worst} (rule G4, context steering)",
            examples,
        )


def _region_of(context_key: str) -> str:
    try:
        return str(json.loads(context_key)[0])
    except (ValueError, IndexError, TypeError):
        return context_key
