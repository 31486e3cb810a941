"""``fairshelf train``: validation search, fit, temporal evaluation, bundle publication.

Flow: read and clean the canonical data; fit on the events before a validation cut and choose
the ALS size and the hybrid blend there; fit on the events before the evaluation cut (or on
everything when no cut is given); evaluate every model and baseline on the test period; write
the bundle under a temporary name, rename it and move ``current``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fairshelf.errors import InvalidArgument
from recsys.hybrid import HybridParams
from training.baselines import baseline_scorers
from training.blend_search import BlendChoice, choose_blend, model_scorers
from training.bundle_export import write_trained_bundle
from training.config import TrainConfig, load_config
from training.data.readers import InvalidRows
from training.data.rejects import KEPT_UNPRICED
from training.elasticity_input import elasticity_table
from training.evaluation import EvalSplit, evaluate_modes
from training.fit import Fitted, fit_window, splits_for
from training.memory import retain_freed_memory
from training.prepare import PreparedData, prepare
from training.ranking import in_background


def parse_cut(cut: str) -> pd.Timestamp:
    """Parse a YYYY-MM-DD (or ISO) cut as a UTC timestamp."""
    try:
        ts = pd.Timestamp(cut)
    except ValueError as exc:
        raise InvalidArgument(f"bad cut {cut!r}: expected YYYY-MM-DD", field="eval_cut") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def item_item_for(cfg: TrainConfig, train_ev: pd.DataFrame) -> TrainConfig:
    """Switch off the item-item models the full training window is too large for.

    Decided once on the events before the evaluation cut, so that the validation fit (a
    smaller window) never searches a part the final model cannot have.
    """
    buys = train_ev[train_ev["event_type"] == "purchase"]
    n_bought = int(buys["item_id"].nunique())
    ii = cfg.item_item
    update = {
        "ease": ii.ease and n_bought <= ii.ease_max_items,
        "rp3beta": ii.rp3beta and n_bought <= ii.rp3beta_max_items,
    }
    return cfg.model_copy(update={"item_item": ii.model_copy(update=update)})


def _default_params(model: str, choice: HybridParams) -> HybridParams:
    if model == "als":
        return HybridParams(repeat_weight=0.0, discovery_weights={"als": 1.0})
    if model == "two_tower":
        return HybridParams(repeat_weight=0.0, discovery_weights={"two_tower": 1.0})
    return choice


def two_tower_notes(
    metrics: dict[str, dict[str, dict[str, float]]], choice: BlendChoice
) -> list[str]:
    """Explain, with the run's own numbers, how the two-tower model compares with ALS."""
    novel = metrics.get("novel", {})
    if "two_tower" not in novel or "als" not in novel:
        return []
    tt, als = novel["two_tower"]["recall@20"], novel["als"]["recall@20"]
    weight = choice.params.discovery_weights.get("two_tower", 0.0)
    verdict = "at least matches" if tt >= als else "is below"
    return [
        f"two-tower novel Recall@20 {tt:.4f} {verdict} ALS {als:.4f}; the validation search "
        f"gave it weight {weight:g} in the discovery blend "
        + (
            "(it adds nothing ALS and trend do not already rank, on this data)"
            if weight == 0
            else "(it adds signal to the blend)"
        )
    ]


def evaluate_all(
    fitted: Fitted,
    factors: int,
    params: HybridParams,
    splits: dict[str, EvalSplit],
    cfg: TrainConfig,
    seed: int,
) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics of every model and baseline in both modes."""
    scorers = model_scorers(fitted, factors, params)
    scorers.update(
        baseline_scorers(
            fitted.purchases,
            fitted.purchase_ages,
            cfg.evaluation.baseline_popularity_days,
            seed,
            cfg.als.threads,
        )
    )
    out: dict[str, dict[str, dict[str, float]]] = {mode: {} for mode in splits}
    for name, fn in scorers.items():
        for mode, row in evaluate_modes(fn, splits, cfg.evaluation.k_values).items():
            out[mode][name] = row
    return out


def train(
    events_path: str | Path,
    items_path: str | Path,
    bundles_dir: str | Path,
    eval_cut: str | None = None,
    model: str | None = None,
    config_path: str | Path | None = None,
    seed: int = 0,
    show_progress: bool | None = None,
    invalid_rows: InvalidRows = "fail",
) -> Path:
    """Train, evaluate and publish a bundle; returns the bundle directory.

    Parameters
    ----------
    events_path, items_path:
        Canonical events and items (Parquet or CSV).
    bundles_dir:
        Where bundles and the ``current`` symlink live.
    eval_cut:
        Temporal cut (YYYY-MM-DD); when given, models are trained before it and evaluated after.
    model:
        Default ranking model (``hybrid``, ``als``, ``two_tower``); overrides the config.
    config_path:
        JSON or TOML config file.
    seed:
        Random seed (deterministic results for a seed).
    show_progress:
        Progress bars; overrides the config.
    invalid_rows:
        ``fail`` stops at the first row that breaks the data contract; ``skip`` sets such rows
        aside in the bundle's ``rejects.csv`` and trains on the rest.

    Returns
    -------
    pathlib.Path
        The published bundle directory.

    Raises
    ------
    InvalidArgument
        Bad config, cut, or no usable data.
    DataValidationError
        Input files that break the data contract.
    """
    overrides: dict[str, object] = {"model": model, "show_progress": show_progress}
    cfg = load_config(config_path, overrides)
    retain_freed_memory()  # before reading: the preparation's blocks benefit too
    t0 = time.perf_counter()
    data = prepare(events_path, items_path, cfg, invalid_rows)
    return train_prepared(
        data, cfg, bundles_dir, eval_cut=eval_cut, seed=seed, total_start=t0, make_current=True
    )


def rejects_notes(data: PreparedData) -> list[str]:
    """Report lines on the rows set aside while reading (counts per reason)."""
    counts = data.rejects.counts()
    if not counts:
        return []
    notes = [
        f"{data.rejects.dropped()} invalid row(s) skipped (listed in rejects.csv): "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    ]
    rows = data.rejects.rows
    unpriced = rows.loc[rows["action"] == KEPT_UNPRICED]
    if len(unpriced):
        notes.append(
            f"warning: {len(unpriced)} item(s) have no usable base price; they are recommended "
            "but left out of dynamic pricing"
        )
    return notes


def train_prepared(
    data: PreparedData,
    cfg: TrainConfig,
    bundles_dir: str | Path,
    *,
    eval_cut: str | None = None,
    seed: int = 0,
    total_start: float | None = None,
    make_current: bool = True,
    extra_notes: list[str] | None = None,
) -> Path:
    """Train, evaluate and write a bundle from prepared data (see :func:`train`).

    ``make_current=False`` writes the bundle in place without moving ``current`` (the
    retraining job publishes itself, after its gate).
    """
    retain_freed_memory()  # once per process; callers that prepared the data elsewhere too
    t0 = time.perf_counter() if total_start is None else total_start
    timings: dict[str, float] = {"read": time.perf_counter() - t0}
    ev = data.events
    cut = parse_cut(eval_cut) if eval_cut else None
    train_ev = ev[ev["timestamp"] < cut] if cut is not None else ev
    if train_ev.empty:
        raise InvalidArgument(f"no events before the cut {eval_cut}", field="eval_cut")
    end = cut if cut is not None else ev["timestamp"].max()
    val_cut = end - pd.Timedelta(days=cfg.evaluation.validation_days)
    use_tt = cfg.two_tower.enabled or cfg.model == "two_tower"
    cfg = item_item_for(cfg, train_ev)
    # The pricing side's elasticities need only the events up to the end of the training
    # window: fitted on a thread of their own (mostly outside the GIL) while the models train.
    elasticities = in_background(
        "fairshelf-elasticities",
        elasticity_table,
        data.events,
        data.catalog,
        train_ev["timestamp"].max(),
    )

    t = time.perf_counter()
    val_train = train_ev[train_ev["timestamp"] < val_cut]
    val_fit: Fitted | None = None
    choice = BlendChoice(factors=cfg.als.factors_grid[0], params=HybridParams())
    notes: list[str] = [*rejects_notes(data), *(extra_notes or [])]
    if not val_train.empty:
        val_ev = train_ev[train_ev["timestamp"] >= val_cut]
        val_fit = fit_window(
            val_train,
            data.catalog,
            cfg,
            seed,
            cfg.als.factors_grid,
            use_tt,
            check_events=val_ev,
            check_users=cfg.hybrid.max_users,
        )
        timings.update({f"validation_{k}": v for k, v in val_fit.timings.items()})
        val_splits = val_fit.later_splits
        assert val_splits is not None  # kept by fit_window for the check_events it was given
        if val_splits["all"].n_users and val_splits["novel"].n_users:
            t_search = time.perf_counter()
            choice = choose_blend(
                val_fit,
                val_splits["all"],
                val_splits["novel"],
                cfg.hybrid,
                cfg.show_progress,
                seed,
            )
            timings["blend_search"] = time.perf_counter() - t_search
        else:
            notes.append("validation window has no evaluable shoppers; default blend used")
    else:
        notes.append("no events before the validation cut; default blend used")
    timings["validation"] = time.perf_counter() - t

    if choice.trend_half_life_days is not None:
        pop = cfg.popularity.model_copy(update={"half_life_days": choice.trend_half_life_days})
        cfg = cfg.model_copy(update={"popularity": pop})
    t = time.perf_counter()
    # The final window trains the two-tower as many epochs as early stopping kept on the
    # validation window, from the same start, on every shopper: no hold-out, no checks.
    val_tt = val_fit.two_tower if val_fit else None
    tt_epochs = val_tt.best_epochs if val_tt else None
    warm = bool(val_tt and val_tt.warm_started)
    fitted = fit_window(
        train_ev, data.catalog, cfg, seed, [choice.factors], use_tt, tt_epochs or None, warm
    )
    timings["fit"] = time.perf_counter() - t
    timings.update({f"fit_{k}": v for k, v in fitted.timings.items()})
    params = _default_params(cfg.model, choice.params)

    metrics: dict[str, dict[str, dict[str, float]]] = {}
    n_eval: dict[str, int] = {}
    if cut is not None:
        t = time.perf_counter()
        splits = splits_for(fitted, data.catalog, ev[ev["timestamp"] >= cut])
        n_eval = {mode: s.n_users for mode, s in splits.items()}
        metrics = evaluate_all(fitted, choice.factors, choice.params, splits, cfg, seed)
        timings["evaluate"] = time.perf_counter() - t
        notes.extend(two_tower_notes(metrics, choice))
    return write_trained_bundle(
        bundles_dir=Path(bundles_dir),
        data=data,
        cfg=cfg,
        seed=seed,
        fitted=fitted,
        factors=choice.factors,
        params=params,
        validated=choice.params,
        metrics=metrics,
        eval_info=(eval_cut, str(val_cut.date()), n_eval) if eval_cut else None,
        trials=choice.trials,
        timings=timings,
        notes=notes,
        started=datetime.now(UTC),
        total_start=t0,
        make_current=make_current,
        elasticities=elasticities,
    )
