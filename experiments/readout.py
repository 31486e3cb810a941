"""The readout of one experiment: exposure balance, effects per metric, their path in time.

:func:`build_readout` attributes events to exposed shoppers (:mod:`experiments.attribution`)
and, for each metric and each treatment variant against the control, computes the fixed-
horizon effect (Welch or delta method), the CUPED-adjusted effect when the metric has a
pre-exposure covariate, the always-valid mSPRT p-value and interval over daily looks, and
Holm-adjusted p-values across variants. A metric that cannot be computed for a variant (too
few shoppers, no orders for an average order value) carries a note instead of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from experiments.attribution import DEFAULT_LOOKBACK, DEFAULT_WINDOW, attribute
from experiments.cuped import cuped
from experiments.estimates import Effect, Estimate, effect, mean_estimate, ratio_estimate
from experiments.metrics import FALLBACK_STRATEGIES, METRICS, MetricSpec, with_derived
from experiments.multiple import holm
from experiments.sequential import DEFAULT_N_TUNE, always_valid
from experiments.srm import SrmResult, srm_test
from fairshelf.errors import InvalidArgument

MAX_LOOKS = 30


@dataclass(frozen=True)
class VariantRow:
    """Exposure balance and serving guardrails of one variant."""

    variant: str
    units: int
    exposures: int
    share: float
    expected_share: float
    p99_ms: float | None
    fallback_share: float | None


@dataclass(frozen=True)
class MetricRow:
    """One metric of one treatment variant against the control."""

    metric: str
    label: str
    variant: str
    control_value: float | None = None
    value: float | None = None
    effect: Effect | None = None
    cuped: Effect | None = None
    cuped_width_ratio: float | None = None
    seq_p_value: float | None = None
    seq_ci_low: float | None = None
    seq_ci_high: float | None = None
    p_holm: float | None = None
    note: str | None = None


@dataclass(frozen=True)
class PathPoint:
    """The effect as it stood at one look."""

    metric: str
    variant: str
    at: str
    units: int
    absolute: float
    ci_low: float
    ci_high: float
    seq_ci_low: float
    seq_ci_high: float
    seq_p_value: float


@dataclass(frozen=True)
class Readout:
    """Everything a report shows; :meth:`to_dict` is its JSON form (no NaN anywhere)."""

    experiment: str
    unit: str
    since: str | None
    until: str
    control: str
    alpha: float
    attribution_window_hours: float
    variants: list[VariantRow]
    srm: SrmResult
    metrics: list[MetricRow]
    path: list[PathPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; undefined numbers are ``None``."""
        return _clean(asdict(self))


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _estimate(spec: MetricSpec, g: pd.DataFrame) -> Estimate:
    if spec.kind == "ratio":
        assert spec.denominator is not None
        return ratio_estimate(g[spec.column].to_numpy(), g[spec.denominator].to_numpy())
    return mean_estimate(g[spec.column].to_numpy())


def _why_not(spec: MetricSpec, groups: Mapping[str, pd.DataFrame]) -> str | None:
    for name, g in groups.items():
        if len(g) < 2:
            return f"variant {name!r} has {len(g)} exposed shopper(s); at least 2 are needed"
        if spec.kind == "ratio" and float(g[spec.denominator].sum()) == 0.0:
            what = "orders" if spec.denominator == "orders" else "recommended items shown"
            return f"no {what} in variant {name!r} yet"
    if spec.kind == "mean" and all(g[spec.column].nunique() < 2 for g in groups.values()):
        return "no variation yet: every shopper has the same value"
    return None


def _compare(
    spec: MetricSpec, t: pd.DataFrame, c: pd.DataFrame, alpha: float
) -> tuple[Effect, Effect | None]:
    plain = effect(_estimate(spec, t), _estimate(spec, c), alpha)
    if spec.covariate is None:
        return plain, None
    x_all = np.concatenate([t[spec.covariate].to_numpy(), c[spec.covariate].to_numpy()])
    if float(np.var(x_all)) == 0.0:
        return plain, None
    res = cuped(
        [c[spec.column].to_numpy(), t[spec.column].to_numpy()],
        [c[spec.covariate].to_numpy(), t[spec.covariate].to_numpy()],
    )
    adj_c, adj_t = res.estimates
    return plain, effect(adj_t, adj_c, alpha)


def _look_times(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """End of each day of the experiment (at most :data:`MAX_LOOKS`), ``end`` last."""
    days = max(1, math.ceil((end - start) / pd.Timedelta(days=1)))
    step = max(1, math.ceil(days / MAX_LOOKS))
    looks = [start.normalize() + pd.Timedelta(days=d) for d in range(step, days + 1, step)]
    looks = [t for t in looks if start < t < end]
    return [*looks, end]


def build_readout(
    exposures: pd.DataFrame,
    events: pd.DataFrame,
    *,
    experiment: str,
    shares: Mapping[str, float],
    control: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    window: timedelta = DEFAULT_WINDOW,
    lookback: timedelta = DEFAULT_LOOKBACK,
    alpha: float = 0.05,
    n_tune: int = DEFAULT_N_TUNE,
) -> Readout:
    """The readout of ``experiment`` from its exposures and the shoppers' events.

    Parameters
    ----------
    exposures:
        Exposures of this experiment (``user_id``, ``variant``, ``ts``, ``items``,
        ``latency_us``, ``strategy``), already limited to the window.
    events:
        Canonical events of the exposed shoppers from ``since - lookback`` on.
    shares:
        The configured split (variant -> share) for the sample-ratio test; variants seen in
        the exposures but missing here count with share 0.
    control:
        The control variant (default: ``"control"`` or ``"default"`` when present, else the
        first by name).
    since, until:
        The window, for the report's header and the daily looks.
    window, lookback, alpha, n_tune:
        Attribution window, covariate lookback, one minus the interval level, and the
        sequential test's tuning sample size.

    Raises
    ------
    InvalidArgument
        If there is no exposure, a single variant, or an unknown control.
    """
    if exposures.empty:
        raise InvalidArgument(f"experiment {experiment!r} has no exposures in this window")
    names = sorted(set(exposures["variant"]))
    if control is None:
        control = next((n for n in ("control", "default") if n in names), names[0])
    if control not in names:
        raise InvalidArgument(
            f"control variant {control!r} has no exposures; variants: {', '.join(names)}",
            field="control",
        )
    if len(names) < 2:
        raise InvalidArgument(
            f"experiment {experiment!r} exposed a single variant ({names[0]!r}); "
            "nothing to compare",
        )
    end = pd.Timestamp(until) if until is not None else pd.Timestamp(exposures["ts"].max())
    if until is None and len(events):  # everything given counts, events after the last exposure too
        end = max(end, pd.Timestamp(events["timestamp"].max()))
    final = with_derived(attribute(exposures, events, until=end, window=window, lookback=lookback))
    variants = _variant_rows(exposures, final, names, shares)
    srm = srm_test({v.variant: v.units for v in variants}, {n: shares.get(n, 0.0) for n in names})
    treatments = [n for n in names if n != control]
    looks = _look_times(exposures["ts"].min(), end)
    look_units = [
        with_derived(attribute(exposures, events, until=t, window=window, lookback=lookback))
        for t in looks[:-1]
    ] + [final]
    rows: list[MetricRow] = []
    path: list[PathPoint] = []
    groups = {n: g for n, g in final.groupby("variant")}
    for spec in METRICS:
        metric_rows: list[MetricRow] = []
        for name in treatments:
            pair = {control: groups[control], name: groups[name]}
            note = _why_not(spec, pair)
            if note is not None:
                metric_rows.append(MetricRow(spec.name, spec.label, name, note=note))
                continue
            plain, adjusted = _compare(spec, groups[name], groups[control], alpha)
            primary = adjusted or plain
            points = _sequential_path(spec, look_units, looks, control, name, alpha, n_tune)
            path.extend(points)
            width = (
                (adjusted.ci_high - adjusted.ci_low) / (plain.ci_high - plain.ci_low)
                if adjusted is not None and plain.ci_high > plain.ci_low
                else None
            )
            metric_rows.append(
                MetricRow(
                    metric=spec.name,
                    label=spec.label,
                    variant=name,
                    control_value=plain.control,
                    value=plain.treatment,
                    effect=plain,
                    cuped=adjusted,
                    cuped_width_ratio=width,
                    seq_p_value=points[-1].seq_p_value if points else primary.p_value,
                    seq_ci_low=points[-1].seq_ci_low if points else None,
                    seq_ci_high=points[-1].seq_ci_high if points else None,
                )
            )
        rows.extend(with_holm(metric_rows))
    notes = []
    if srm.mismatch:
        notes.append(
            f"sample ratio mismatch (p = {srm.p_value:.2g}): the split is not what was "
            "configured; treat every effect as suspect until the cause is found"
        )
    return Readout(
        experiment=experiment,
        unit="shopper",
        since=since.isoformat() if since is not None else None,
        until=end.isoformat(),
        control=control,
        alpha=alpha,
        attribution_window_hours=window.total_seconds() / 3600.0,
        variants=variants,
        srm=srm,
        metrics=rows,
        path=path,
        notes=notes,
    )


def with_holm(rows: list[MetricRow]) -> list[MetricRow]:
    """The rows of one metric with Holm-adjusted p-values across its variants."""
    done = [i for i, r in enumerate(rows) if r.effect is not None]
    p = [(rows[i].cuped or rows[i].effect).p_value for i in done]  # type: ignore[union-attr]
    adjusted = holm(p)
    out = list(rows)
    for i, q in zip(done, adjusted, strict=True):
        r = out[i]
        out[i] = MetricRow(**{**r.__dict__, "p_holm": float(q)})
    return out


def _variant_rows(
    exposures: pd.DataFrame, units: pd.DataFrame, names: list[str], shares: Mapping[str, float]
) -> list[VariantRow]:
    total = max(len(units), 1)
    weight = sum(shares.get(n, 0.0) for n in names) or 1.0
    out = []
    for name in names:
        ex = exposures[exposures["variant"] == name]
        lat = ex["latency_us"].to_numpy(dtype=np.float64) if "latency_us" in ex else np.array([])
        fallback = (
            float(ex["strategy"].isin(FALLBACK_STRATEGIES).mean()) if "strategy" in ex else None
        )
        shoppers = int((units["variant"] == name).sum())
        out.append(
            VariantRow(
                variant=name,
                units=shoppers,
                exposures=len(ex),
                share=shoppers / total,
                expected_share=shares.get(name, 0.0) / weight,
                p99_ms=float(np.percentile(lat, 99)) / 1000.0 if lat.size else None,
                fallback_share=fallback,
            )
        )
    return out


def _sequential_path(
    spec: MetricSpec,
    look_units: list[pd.DataFrame],
    looks: list[pd.Timestamp],
    control: str,
    name: str,
    alpha: float,
    n_tune: int,
) -> list[PathPoint]:
    """Fixed and always-valid intervals at each look where both variants can be measured."""
    kept: list[tuple[pd.Timestamp, int, Effect]] = []
    for at, units in zip(looks, look_units, strict=True):
        pair = {n: units[units["variant"] == n] for n in (control, name)}
        if _why_not(spec, pair) is not None:
            continue
        plain, adjusted = _compare(spec, pair[name], pair[control], alpha)
        kept.append((at, len(pair[control]) + len(pair[name]), adjusted or plain))
    if not kept:
        return []
    p, lo, hi = always_valid(
        [e.absolute for _a, _n, e in kept],
        [e.se**2 for _a, _n, e in kept],
        [n for _a, n, _e in kept],
        alpha,
        n_tune,
    )
    return [
        PathPoint(
            metric=spec.name,
            variant=name,
            at=at.isoformat(),
            units=n,
            absolute=eff.absolute,
            ci_low=eff.ci_low,
            ci_high=eff.ci_high,
            seq_ci_low=float(lo[i]),
            seq_ci_high=float(hi[i]),
            seq_p_value=float(p[i]),
        )
        for i, (at, n, eff) in enumerate(kept)
    ]
