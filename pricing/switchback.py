"""Switchback price experiments: policies alternate by time slot, never by shopper.

Every shopper sees the same policy at the same time, so an experiment never prices two
shoppers differently (rule G3). Time is cut into slots of whole price epochs; within each
block of ``len(policies)`` consecutive slots every policy gets exactly one slot, in an order
drawn from a seeded hash of the block index (balanced, reproducible, unpredictable to anyone
without the seed). The analysis treats slots as the randomisation units: revenue and margin
per slot, by policy, with t confidence intervals, and each policy's difference from the first
(control) policy with a Welch interval. A washout can drop the first epochs of each slot,
where demand may still react to the previous slot's price.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from fairshelf.errors import InvalidArgument
from pricing.inputs import check_policy_inputs
from pricing.policy import PricingPolicy


class Switchback:
    """A :class:`pricing.engine.PolicySchedule` that alternates policies by time slot.

    Parameters
    ----------
    policies:
        At least two policies; the first is the control in the analysis.
    seed:
        Seed of the slot order.
    epochs_per_slot:
        Slot length in price epochs (e.g. 4 hourly epochs = 4 h slots).
    """

    def __init__(
        self, policies: Sequence[PricingPolicy], *, seed: int, epochs_per_slot: int = 4
    ) -> None:
        if len(policies) < 2:
            raise InvalidArgument("a switchback needs at least two policies", field="policies")
        names = [p.name for p in policies]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"policy names must differ, got {names}", field="policies")
        if epochs_per_slot < 1:
            raise InvalidArgument(
                f"epochs_per_slot must be >= 1, got {epochs_per_slot}", field="epochs_per_slot"
            )
        for p in policies:
            check_policy_inputs(p.name, p.inputs)
        self._policies = tuple(policies)
        self.seed = seed
        self.epochs_per_slot = epochs_per_slot

    def policies(self) -> Sequence[PricingPolicy]:
        """The policies under test, control first."""
        return self._policies

    def slot(self, epoch: int) -> int:
        """The slot of a price epoch."""
        return epoch // self.epochs_per_slot

    def arm(self, slot: int) -> int:
        """Index of the policy assigned to ``slot``."""
        n = len(self._policies)
        block, pos = divmod(slot, n)
        digest = hashlib.blake2b(f"{self.seed}:{block}".encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "big"))
        return int(rng.permutation(n)[pos])

    def policy_for(self, epoch: int) -> PricingPolicy:
        """The policy in charge during ``epoch``."""
        return self._policies[self.arm(self.slot(epoch))]


def _interval(x: np.ndarray, z_level: float) -> tuple[float, float, float]:
    mean = float(np.mean(x))
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    se = float(np.std(x, ddof=1) / np.sqrt(len(x)))
    t = float(stats.t.ppf(0.5 + z_level / 2, len(x) - 1))
    return mean, mean - t * se, mean + t * se


def analyze_switchback(
    epochs: pd.DataFrame,
    *,
    epochs_per_slot: int,
    washout_epochs: int = 0,
    control: str | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Revenue and margin per slot by policy, with confidence intervals.

    Parameters
    ----------
    epochs:
        One row per price epoch: ``epoch``, ``policy``, ``revenue``, ``margin`` (store totals
        in that epoch).
    epochs_per_slot:
        As in :class:`Switchback`.
    washout_epochs:
        Epochs dropped at the start of every slot (carry-over from the previous slot).
    control:
        Policy the others are compared with (default: the first policy by name order of
        appearance).
    level:
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        Per policy: ``policy``, ``n_slots``, ``revenue_per_slot``, ``revenue_ci_low``,
        ``revenue_ci_high``, ``margin_per_slot``, ``margin_ci_low``, ``margin_ci_high``,
        ``revenue_diff``, ``revenue_diff_ci_low``, ``revenue_diff_ci_high``, ``margin_diff``,
        ``margin_diff_ci_low``, ``margin_diff_ci_high`` (differences against the control).
    """
    need = ["epoch", "policy", "revenue", "margin"]
    missing = [c for c in need if c not in epochs.columns]
    if missing:
        raise InvalidArgument(f"epochs lack column(s) {missing}", field=missing[0])
    df = epochs.copy()
    df["slot"] = df["epoch"] // epochs_per_slot
    df = df[df["epoch"] % epochs_per_slot >= washout_epochs]
    slots = df.groupby(["slot", "policy"], sort=True)[["revenue", "margin"]].sum().reset_index()
    order = list(dict.fromkeys(epochs["policy"]))
    control = control or order[0]
    per: dict[str, pd.DataFrame] = {str(p): g for p, g in slots.groupby("policy")}
    if control not in per:
        raise InvalidArgument(f"control policy {control!r} has no slots", field="control")
    rows = []
    for name in order:
        g = per.get(name)
        if g is None:
            continue
        row: dict[str, float | str | int] = {"policy": name, "n_slots": len(g)}
        for metric in ("revenue", "margin"):
            x = g[metric].to_numpy(dtype=np.float64)
            mean, lo, hi = _interval(x, level)
            row[f"{metric}_per_slot"] = mean
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = lo, hi
            c = per[control][metric].to_numpy(dtype=np.float64)
            diff = float(np.mean(x) - np.mean(c))
            if name == control or len(x) < 2 or len(c) < 2:
                d_lo = d_hi = float("nan") if name != control else 0.0
            else:
                va, vb = np.var(x, ddof=1) / len(x), np.var(c, ddof=1) / len(c)
                se = float(np.sqrt(va + vb))
                dof = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(c) - 1)) if se else 1
                t = float(stats.t.ppf(0.5 + level / 2, dof))
                d_lo, d_hi = diff - t * se, diff + t * se
            row[f"{metric}_diff"] = diff
            row[f"{metric}_diff_ci_low"], row[f"{metric}_diff_ci_high"] = d_lo, d_hi
        rows.append(row)
    return pd.DataFrame(rows)
