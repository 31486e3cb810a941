"""Price switchbacks read out in the same format as shopper experiments, with the slot as unit.

A switchback alternates pricing policies by time slot, never by shopper, so the unit of the
analysis is the slot: revenue and margin summed per slot (after an optional washout at the
start of each slot), compared between each policy and the control with Welch intervals, with
always-valid intervals over looks after every block of slots and Holm across policies. The
slot-count balance is checked like a sample ratio (each block gives each policy one slot).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from experiments.estimates import effect, mean_estimate
from experiments.readout import MetricRow, PathPoint, Readout, VariantRow, with_holm
from experiments.sequential import always_valid
from experiments.srm import srm_test
from fairshelf.errors import InvalidArgument

SWITCHBACK_METRICS: tuple[tuple[str, str], ...] = (
    ("revenue", "revenue per slot"),
    ("margin", "margin per slot"),
)


def slot_table(epochs: pd.DataFrame, epochs_per_slot: int, washout_epochs: int = 0) -> pd.DataFrame:
    """Revenue and margin summed per (slot, policy), washout epochs dropped, slots in order.

    Raises
    ------
    InvalidArgument
        If a column is missing or the slot settings are out of range.
    """
    need = ["epoch", "policy", "revenue", "margin"]
    missing = [c for c in need if c not in epochs.columns]
    if missing:
        raise InvalidArgument(f"epochs lack column(s) {missing}", field=missing[0])
    if epochs_per_slot < 1 or not 0 <= washout_epochs < epochs_per_slot:
        raise InvalidArgument(
            f"need epochs_per_slot >= 1 and 0 <= washout < epochs_per_slot, got "
            f"{epochs_per_slot} and {washout_epochs}",
            field="epochs_per_slot",
        )
    df = epochs.assign(slot=epochs["epoch"] // epochs_per_slot)
    df = df[df["epoch"] % epochs_per_slot >= washout_epochs]
    return df.groupby(["slot", "policy"], sort=True)[["revenue", "margin"]].sum().reset_index()


def switchback_readout(
    epochs: pd.DataFrame,
    *,
    name: str,
    epochs_per_slot: int,
    washout_epochs: int = 0,
    control: str | None = None,
    alpha: float = 0.05,
    n_tune: int | None = None,
) -> Readout:
    """The readout of a switchback from its per-epoch store totals.

    Parameters
    ----------
    epochs:
        One row per price epoch: ``epoch``, ``policy``, ``revenue``, ``margin``.
    name:
        The experiment's name in the report.
    epochs_per_slot, washout_epochs:
        As in :class:`pricing.switchback.Switchback`.
    control:
        Policy the others are compared with (default: the first policy to appear).
    alpha:
        One minus the interval level.
    n_tune:
        Slots per policy the sequential test is tuned for (default: the planned length, the
        slots per policy in ``epochs``); a switchback has tens of units, not thousands.
    """
    slots = slot_table(epochs, epochs_per_slot, washout_epochs)
    if slots.empty:
        raise InvalidArgument(f"switchback {name!r} has no slots", field="epochs")
    order = [str(p) for p in dict.fromkeys(epochs["policy"])]
    control = control or order[0]
    if control not in order:
        raise InvalidArgument(f"control policy {control!r} has no slots", field="control")
    counts = {p: int((slots["policy"] == p).sum()) for p in order}
    srm = srm_test(counts, dict.fromkeys(order, 1.0))
    total = sum(counts.values())
    variants = [
        VariantRow(p, counts[p], counts[p], counts[p] / total, 1 / len(order), None, None)
        for p in order
    ]
    # A look after every block of slots (each policy had one more), at most 30 looks.
    seen = np.sort(slots["slot"].unique())
    step = max(len(order), math.ceil(len(seen) / 30))
    looks = [int(seen[i]) for i in range(len(order) - 1, len(seen), step)]
    last_slot = int(seen[-1])
    if looks[-1:] != [last_slot]:
        looks.append(last_slot)
    tune = n_tune or max(2, len(seen) // len(order))
    rows: list[MetricRow] = []
    path: list[PathPoint] = []
    for column, label in SWITCHBACK_METRICS:
        metric_rows = []
        for p in order:
            if p == control:
                continue
            c = slots.loc[slots["policy"] == control, column].to_numpy(dtype=np.float64)
            t = slots.loc[slots["policy"] == p, column].to_numpy(dtype=np.float64)
            if len(c) < 2 or len(t) < 2:
                note = f"fewer than 2 slots for {p!r} or {control!r}"
                metric_rows.append(MetricRow(column, label, p, note=note))
                continue
            eff = effect(mean_estimate(t), mean_estimate(c), alpha)
            kept = []
            for at in looks:
                upto = slots[slots["slot"] <= at]
                ct = upto.loc[upto["policy"] == control, column].to_numpy(dtype=np.float64)
                tt = upto.loc[upto["policy"] == p, column].to_numpy(dtype=np.float64)
                if len(ct) >= 2 and len(tt) >= 2:
                    kept.append(
                        (at, len(ct) + len(tt), effect(mean_estimate(tt), mean_estimate(ct), alpha))
                    )
            seq_p, lo, hi = always_valid(
                [e.absolute for _, _, e in kept], [e.se**2 for _, _, e in kept],
                [n for _, n, _ in kept], alpha, tune,
            )  # fmt: skip
            path.extend(
                PathPoint(
                    column,
                    p,
                    f"slot {at}",
                    n,
                    e.absolute,
                    e.ci_low,
                    e.ci_high,
                    float(lo[i]),
                    float(hi[i]),
                    float(seq_p[i]),
                )
                for i, (at, n, e) in enumerate(kept)
            )
            metric_rows.append(
                MetricRow(
                    metric=column,
                    label=label,
                    variant=p,
                    control_value=eff.control,
                    value=eff.treatment,
                    effect=eff,
                    seq_p_value=float(seq_p[-1]) if kept else None,
                    seq_ci_low=float(lo[-1]) if kept else None,
                    seq_ci_high=float(hi[-1]) if kept else None,
                )
            )
        rows.extend(with_holm(metric_rows))
    return Readout(
        experiment=name,
        unit="slot",
        since=None,
        until=f"slot {last_slot}",
        control=control,
        alpha=alpha,
        attribution_window_hours=0.0,
        variants=variants,
        srm=srm,
        metrics=rows,
        path=path,
        notes=[f"{epochs_per_slot} epochs per slot, {washout_epochs} dropped as washout"],
    )
