"""A market simulator on the synthetic store's true demand curves.

Two arms price the same items under the same guardrails and face the same simulated traffic
(common random numbers):

- the **learner** starts from elasticities that are off by ``start_error`` (each item's
  estimate is the truth times ``1 ± start_error``) and refits them every week from its own
  simulated sales (``pricing.elasticity.fit_elasticities``), combining the new item estimate
  with the previous one by precision (a Bayesian update);
- the **oracle** knows the true elasticities from the first day.

Each period is one day and one price epoch: the engine quotes every item, shoppers view each
item a Poisson number of times and each view buys with the true conversion at the quoted price
(:func:`pricing.demand_curve.conversion`, the law the synthetic store was generated with).
Every quote is also handed to the independent :class:`~pricing.guardrail_audit.GuardrailAuditor`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from scipy import stats

from fairshelf.errors import InvalidArgument
from pricing.catalog import PricingCatalog
from pricing.context import PublicContext
from pricing.demand_curve import conversion
from pricing.elasticity import fit_elasticities
from pricing.engine import PricingEngine
from pricing.epochs import EpochClock
from pricing.guardrail_audit import AuditResult, GuardrailAuditor, ServedPrice
from pricing.guardrail_rules import Guardrail
from pricing.guardrails import GuardrailSet
from pricing.policies.registry import load_policy

TRUTH_COLUMNS = (
    "item_id",
    "category",
    "base_price",
    "unit_cost",
    "true_elasticity",
    "base_conversion",
    "views_per_day",
)

ProgressFn = Callable[[int, int], None]

# The guardrails the benchmark and ``fairshelf simulate`` use unless told otherwise: a band of
# -20 % / +25 % around the base price, 5 % minimum margin, at most 10 % change per 24 h, .99.
DEFAULT_SIM_GUARDRAILS = GuardrailSet().with_rule(
    Guardrail(
        "global",
        min_ratio=0.8,
        max_ratio=1.25,
        min_margin=0.05,
        max_change_pct=0.1,
        price_ending=0.99,
        objective="revenue",
    )
)


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of one simulation run."""

    weeks: int = 8
    periods_per_week: int = 7
    start_error: float = 0.3
    seed: int = 0
    policy: str = "elasticity_optimal"
    min_obs: int = 30
    start: datetime = datetime(2026, 6, 1, tzinfo=UTC)


@dataclass
class SimulationResult:
    """Weekly revenue and margin per arm, the elasticity trajectory and the audits."""

    weekly: pd.DataFrame
    elasticities: pd.DataFrame
    audits: dict[str, AuditResult] = field(default_factory=dict)
    quotes: int = 0

    def revenue_ratio(self, last_weeks: int = 4) -> float:
        """Learner revenue over the oracle's in the last ``last_weeks`` weeks."""
        w = self.weekly[self.weekly["week"] > self.weekly["week"].max() - last_weeks]
        by = w.groupby("arm")["revenue"].sum()
        return float(by["learner"] / by["oracle"])

    def margin_ratio(self, last_weeks: int = 4) -> float:
        """Learner margin over the oracle's in the last ``last_weeks`` weeks."""
        w = self.weekly[self.weekly["week"] > self.weekly["week"].max() - last_weeks]
        by = w.groupby("arm")["margin"].sum()
        return float(by["learner"] / by["oracle"])


def truth_from_store(
    items: pd.DataFrame, truth_items: pd.DataFrame, events: pd.DataFrame
) -> pd.DataFrame:
    """Assemble the simulator's truth table from a generated synthetic store.

    ``views_per_day`` is each item's average number of product views per day in the store's
    event log (at least 0.1 so every item is seen now and then).
    """
    days = max(1, (events["timestamp"].max() - events["timestamp"].min()).days + 1)
    views = events.loc[events["event_type"] == "view", "item_id"].astype(str).value_counts() / days
    t = truth_items[["item_id", "true_elasticity", "base_conversion"]].copy()
    t["item_id"] = t["item_id"].astype(str)
    base = items[["item_id", "category", "base_price", "unit_cost"]].copy()
    base["item_id"] = base["item_id"].astype(str)
    out = base.merge(t, on="item_id", how="inner")
    out["views_per_day"] = out["item_id"].map(views).fillna(0.0).clip(lower=0.1)
    return out[list(TRUTH_COLUMNS)]


def _catalog(truth: pd.DataFrame, elasticity: np.ndarray, stderr: np.ndarray) -> PricingCatalog:
    items = truth[["item_id", "category", "base_price", "unit_cost"]]
    est = pd.DataFrame({"item_id": truth["item_id"], "elasticity": elasticity, "stderr": stderr})
    return PricingCatalog.from_frames(items, est)


def simulate(
    truth: pd.DataFrame,
    guardrails: GuardrailSet,
    config: SimulationConfig | None = None,
    *,
    progress: ProgressFn | None = None,
) -> SimulationResult:
    """Run the learner and the oracle side by side.

    Parameters
    ----------
    truth:
        Columns of :data:`TRUTH_COLUMNS` (see :func:`truth_from_store`).
    guardrails:
        The guardrail set both arms obey.
    config:
        Run parameters.
    progress:
        Called with ``(period_done, periods_total)``.

    Returns
    -------
    SimulationResult

    Raises
    ------
    InvalidArgument
        Missing truth columns or a non-positive number of weeks.
    """
    cfg = config or SimulationConfig()
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise InvalidArgument(f"truth lacks column(s) {missing}", field=missing[0])
    if cfg.weeks < 1 or cfg.periods_per_week < 1:
        raise InvalidArgument("weeks and periods_per_week must be >= 1", field="weeks")
    truth = truth.reset_index(drop=True)
    rng = np.random.default_rng(cfg.seed)
    n = len(truth)
    true_e = truth["true_elasticity"].to_numpy(dtype=np.float64)
    sign = rng.choice([-1.0, 1.0], size=n)
    est_e = true_e * (1.0 + sign * cfg.start_error)
    est_se = np.abs(est_e) * cfg.start_error
    clock = EpochClock(timedelta(days=1))
    ids = truth["item_id"].tolist()
    cats = truth["category"].tolist()
    base = truth["base_price"].to_numpy(dtype=np.float64)
    cost = truth["unit_cost"].to_numpy(dtype=np.float64)
    q0 = truth["base_conversion"].to_numpy(dtype=np.float64)
    lam = truth["views_per_day"].to_numpy(dtype=np.float64)
    engines = {
        "learner": PricingEngine(
            _catalog(truth, est_e, est_se), guardrails, load_policy(cfg.policy), clock=clock
        ),
        "oracle": PricingEngine(
            _catalog(truth, true_e, np.zeros(n)), guardrails, load_policy(cfg.policy), clock=clock
        ),
    }
    # Before the simulation the store charged its base prices: the 24 h change limit walks
    # both arms away from them, as it would a store switching dynamic pricing on.
    before = clock.start(clock.index(cfg.start) - 1)
    rules = list(guardrails.rules.values())
    auditors = {arm: GuardrailAuditor(rules) for arm in engines}
    for arm, engine in engines.items():
        for item_id, p in zip(ids, base, strict=True):
            engine.history.record(item_id, before, float(p))
            auditors[arm].note_history(item_id, before.timestamp(), float(p))
    obs_parts: list[pd.DataFrame] = []
    weekly_rows: list[dict[str, float | int | str]] = []
    traj = [pd.DataFrame({"item_id": ids, "week": 0, "estimate": est_e, "stderr": est_se})]
    total = cfg.weeks * cfg.periods_per_week
    quotes = 0
    for week in range(1, cfg.weeks + 1):
        acc = {arm: [0.0, 0.0, 0.0] for arm in engines}
        for day in range(cfg.periods_per_week):
            t = (week - 1) * cfg.periods_per_week + day
            at = cfg.start + timedelta(days=t)
            ctx = PublicContext(at=at)
            views = rng.poisson(lam)
            u = rng.random(n)
            for arm, engine in engines.items():
                decisions = engine.decide(ids, ctx)
                price = np.array([d.final_price for d in decisions])
                start_s = decisions[0].epoch_start.timestamp()
                audit = auditors[arm]
                for i in range(n):
                    audit.check(ServedPrice(ids[i], cats[i], base[i], cost[i], start_s, price[i]))
                quotes += n
                conv = conversion(price, base, q0, true_e)
                # Common random numbers: both arms see the same views and the same uniform
                # draw per item, so the comparison is not blurred by luck.
                units = stats.binom.ppf(u, views, conv)
                units = np.nan_to_num(units, nan=0.0)
                acc[arm][0] += float(np.sum(price * units))
                acc[arm][1] += float(np.sum((price - cost) * units))
                acc[arm][2] += float(np.sum(units))
                if arm == "learner":
                    seen = views > 0
                    obs_parts.append(
                        pd.DataFrame(
                            {
                                "item_id": np.asarray(ids)[seen],
                                "category": np.asarray(cats)[seen],
                                "period": t,
                                "price": price[seen],
                                "units": units[seen],
                                "exposure": views[seen].astype(np.float64),
                            }
                        )
                    )
            if progress is not None:
                progress(t + 1, total)
        for arm, (rev, mar, units_sold) in acc.items():
            weekly_rows.append(
                {"week": week, "arm": arm, "revenue": rev, "margin": mar, "units": units_sold}
            )
        # Weekly refit (the retraining job): Bayesian update of each item's estimate.
        fit = fit_elasticities(pd.concat(obs_parts, ignore_index=True), min_obs=cfg.min_obs)
        fit = fit.set_index("item_id").reindex(ids)
        raw = fit["raw_elasticity"].to_numpy(dtype=np.float64)
        raw_se = fit["raw_stderr"].to_numpy(dtype=np.float64)
        ok = np.isfinite(raw) & np.isfinite(raw_se) & (raw_se > 0)
        prior_var = est_se**2
        # The previous estimate and the new data are combined once: the refit uses every
        # simulated period so far, so the prior is always the starting estimate.
        start_e = traj[0]["estimate"].to_numpy()
        # A start known exactly (start_error 0) is a point prior; keep the division finite.
        start_var = np.maximum(traj[0]["stderr"].to_numpy() ** 2, 1e-12)
        post_prec = 1.0 / start_var + np.where(ok, 1.0 / np.where(ok, raw_se**2, 1.0), 0.0)
        post = (
            start_e / start_var + np.where(ok, raw / np.where(ok, raw_se**2, 1.0), 0.0)
        ) / post_prec
        est_e = np.where(np.isfinite(post), post, est_e)
        est_se = np.where(np.isfinite(post_prec), np.sqrt(1.0 / post_prec), np.sqrt(prior_var))
        engines["learner"].set_catalog(_catalog(truth, est_e, est_se))
        traj.append(
            pd.DataFrame({"item_id": ids, "week": week, "estimate": est_e, "stderr": est_se})
        )
    elasticities = pd.concat(traj, ignore_index=True)
    elasticities["true_elasticity"] = np.tile(true_e, cfg.weeks + 1)
    return SimulationResult(
        weekly=pd.DataFrame(weekly_rows),
        elasticities=elasticities,
        audits={arm: a.result for arm, a in auditors.items()},
        quotes=quotes,
    )


def simulate_switchback(
    truth: pd.DataFrame,
    guardrails: GuardrailSet,
    policies: list[str],
    *,
    weeks: int = 8,
    epochs_per_slot: int = 1,
    washout_epochs: int = 0,
    seed: int = 0,
    start: datetime = datetime(2026, 6, 1, tzinfo=UTC),
) -> pd.DataFrame:
    """A switchback experiment on the simulated market: policies alternate by day.

    Every item is priced by the policy of the day's slot (never by shopper); the store's
    revenue and margin per day are then analysed by
    :func:`pricing.switchback.analyze_switchback`. The pricing catalogue carries the true
    elasticities, so the experiment measures the policies, not the estimator.

    Returns
    -------
    pandas.DataFrame
        The analysis table (per policy: slots, revenue and margin per slot with intervals,
        differences from the first policy with intervals).
    """
    from pricing.switchback import analyze_switchback

    epochs = switchback_epochs(
        truth, guardrails, policies, weeks=weeks, epochs_per_slot=epochs_per_slot, seed=seed,
        start=start,
    )  # fmt: skip
    return analyze_switchback(
        epochs,
        epochs_per_slot=epochs_per_slot,
        washout_epochs=washout_epochs,
        control=policies[0],
    )


def switchback_epochs(
    truth: pd.DataFrame,
    guardrails: GuardrailSet,
    policies: list[str],
    *,
    weeks: int = 8,
    epochs_per_slot: int = 1,
    seed: int = 0,
    start: datetime = datetime(2026, 6, 1, tzinfo=UTC),
) -> pd.DataFrame:
    """The store's revenue and margin per daily epoch of a simulated switchback.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch``, ``policy``, ``revenue``, ``margin``.
    """
    from pricing.switchback import Switchback

    truth = truth.reset_index(drop=True)
    n = len(truth)
    rng = np.random.default_rng(seed)
    ids = truth["item_id"].tolist()
    base = truth["base_price"].to_numpy(dtype=np.float64)
    cost = truth["unit_cost"].to_numpy(dtype=np.float64)
    q0 = truth["base_conversion"].to_numpy(dtype=np.float64)
    true_e = truth["true_elasticity"].to_numpy(dtype=np.float64)
    lam = truth["views_per_day"].to_numpy(dtype=np.float64)
    schedule = Switchback(
        [load_policy(p) for p in policies], seed=seed, epochs_per_slot=epochs_per_slot
    )
    clock = EpochClock(timedelta(days=1))
    engine = PricingEngine(_catalog(truth, true_e, np.zeros(n)), guardrails, schedule, clock=clock)
    rows = []
    for day in range(weeks * 7):
        decisions = engine.decide(ids, PublicContext(at=start + timedelta(days=day)))
        price = np.array([d.final_price for d in decisions])
        units = rng.binomial(rng.poisson(lam), conversion(price, base, q0, true_e))
        rows.append(
            {
                "epoch": decisions[0].epoch,
                "policy": decisions[0].policy,
                "revenue": float(np.sum(price * units)),
                "margin": float(np.sum((price - cost) * units)),
            }
        )
    return pd.DataFrame(rows)
