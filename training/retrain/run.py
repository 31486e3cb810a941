"""``fairshelf retrain``: the loop a team leaves to cron.

1. Read the base history and the catalogue (files) and the events logged since the base ends
   (a reader function passed in: training does not reach databases).
2. Train a gate challenger with the champion's configuration and seed on the events up to the
   start of the window, which is the span after the champion's data (at most
   ``window_days`` long), in a work directory inside the bundles directory.
3. Rank the window's shoppers with champion and challenger (:mod:`training.retrain.gate`).
4. Refused, or nothing to compare: ``current`` stays, the report says why, the exit code too.
   Passed: train the bundle to publish on every event (the window included) with the same
   configuration, rename it into the bundles directory and move ``current``.
5. Prune old bundles (never the current one nor the one before it).

A report (Markdown, JSON and a plot) is written for every run under ``runs/<run id>/``. The
caller holds the bundles directory's lock for the whole run. A job killed at any point leaves
at most a ``.retrain-*`` work directory (never listed or served, removed by the next run) and
``current`` where it was, because ``current`` moves only by one atomic rename, last.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fairshelf.errors import FailedPrecondition, NotFound
from recsys.bundle import Bundle, load_bundle
from training.config import TrainConfig
from training.data.readers import InvalidRows, read_checked
from training.data.rejects import Rejects
from training.prepare import PreparedData, prepare_frames
from training.retrain import registry
from training.retrain.gate import GateResult, compare
from training.retrain.outcome import Outcome, RetrainResult
from training.retrain.report import write_run_report
from training.trainer import train_prepared

WORK_PREFIX = ".retrain-"
StoreReader = Callable[[datetime | None], pd.DataFrame]


@dataclass
class RetrainOptions:
    """What one run reads and how it decides."""

    bundles_dir: Path
    read_store: StoreReader
    store_name: str
    base_events: Path | None = None
    items: Path | None = None
    window_days: int = 7
    tolerance: float = 0.02
    dry_run: bool = False
    keep: int = 5
    invalid_rows: InvalidRows = "fail"
    bootstrap_resamples: int = 2000
    actor: str = "retrain"
    show_progress: bool = False
    on_publish: Callable[[registry.Move], None] | None = None


def _champion(bundles_dir: Path) -> Bundle:
    try:
        return load_bundle(bundles_dir, verify=True)
    except NotFound as exc:
        raise FailedPrecondition(
            f"{bundles_dir} has no current bundle to retrain from: train one first "
            "(fairshelf train --out ...)"
        ) from exc


def _recorded(path: Path | None, recorded: str, what: str) -> Path:
    """The file given, else the one the champion's manifest names."""
    if path is not None:
        return path
    p = Path(recorded)
    if not p.is_file():
        raise NotFound(
            f"the champion was trained on {what} {recorded}, which is gone: pass --{what} FILE",
            field=what,
        )
    return p


def combine_events(base: pd.DataFrame, logged: pd.DataFrame) -> pd.DataFrame:
    """Base history then logged events, one row per ``event_id``, in time order."""
    frames = [f for f in (base, logged) if len(f)]
    if not frames:
        return base
    both = pd.concat(frames, ignore_index=True)
    has_id = both["event_id"].notna()
    both = both[~(has_id & both["event_id"].duplicated())]
    return both.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _subset(data: PreparedData, until: pd.Timestamp) -> PreparedData:
    ev = data.events
    return PreparedData(
        events=ev[ev["timestamp"] <= until].reset_index(drop=True),
        catalog=data.catalog,
        dropped=data.dropped,
        digest=data.digest,
        events_path=data.events_path,
        items_path=data.items_path,
        rejects=data.rejects,
    )


def clear_work_dirs(bundles_dir: Path) -> list[str]:
    """Remove work directories left by killed runs (call while holding the lock)."""
    gone = []
    for p in Path(bundles_dir).glob(f"{WORK_PREFIX}*"):
        shutil.rmtree(p, ignore_errors=True)
        gone.append(p.name)
    return gone


def retrain(opts: RetrainOptions) -> RetrainResult:
    """Run the loop once (the caller holds the lock); see the module docstring.

    Raises
    ------
    FailedPrecondition
        No current bundle.
    NotFound
        A data file is missing.
    DataValidationError
        Invalid rows with ``invalid_rows="fail"``, or a file broken as a whole.
    """
    t0 = time.perf_counter()
    root = Path(opts.bundles_dir)
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = root / registry.RUNS_DIR / run_id
    timings: dict[str, float] = {}
    leftovers = clear_work_dirs(root)
    champion = _champion(root)
    cm = champion.manifest
    cfg = TrainConfig.model_validate({**cm.config, "show_progress": opts.show_progress})

    t = time.perf_counter()
    base_path = _recorded(opts.base_events, cm.data.events_path, "base-events")
    items_path = _recorded(opts.items, cm.data.items_path, "items")
    base, base_rejects = read_checked(base_path, "events", opts.invalid_rows)
    items, item_rejects = read_checked(items_path, "items", opts.invalid_rows)
    base_end = base["timestamp"].max()
    logged = opts.read_store(base_end.to_pydatetime() if len(base) else None)
    events = combine_events(base, logged)
    rejects: Rejects = base_rejects.add(item_rejects)
    data = prepare_frames(
        # The base file alone is recorded, so the next run finds it by default; the event log
        # is named in the report and the bundle's notes.
        events,
        items,
        cfg,
        str(base_path),
        str(items_path),
        rejects,
    )
    timings["read"] = time.perf_counter() - t
    end = data.events["timestamp"].max()
    champion_end = pd.Timestamp(cm.data.last_event) if cm.data.last_event else None
    start = end - pd.Timedelta(days=opts.window_days)
    if champion_end is not None:
        start = max(start, champion_end)
    result = RetrainResult(
        run_id=run_id,
        outcome=Outcome.NOTHING_NEW,
        reason="",
        champion=cm.bundle_id,
        run_dir=run_dir,
        rejects=rejects.counts(),
        data={
            "base_events": str(base_path),
            "items": str(items_path),
            "store": opts.store_name,
            "base_rows": len(base),
            "logged_rows": len(logged),
            "usable_events": len(data.events),
            "catalog_items": data.catalog.n_items,
            "champion_data_end": str(champion_end),
            "data_end": str(end),
            "left_by_killed_runs": leftovers,
        },
        timings=timings,
    )
    work = root / f"{WORK_PREFIX}{run_id}"
    try:
        if champion_end is not None and end <= champion_end:
            result.reason = f"no usable event after the champion's data end ({champion_end})"
            return result
        work.mkdir(parents=True)
        t = time.perf_counter()
        gate_path = train_prepared(
            _subset(data, start), cfg, work / "gate", seed=cm.seed, make_current=False
        )
        timings["train_gate_challenger"] = time.perf_counter() - t
        t = time.perf_counter()
        ev = data.events
        window = ev[ev["timestamp"] > start]
        gate = compare(
            champion,
            load_bundle(gate_path, verify=True),
            window,
            opts.tolerance,
            opts.bootstrap_resamples,
            seed=cm.seed,
        )
        timings["gate"] = time.perf_counter() - t
        result.gate = gate
        result.reason = gate.reason
        if not gate.passed:
            result.outcome = Outcome.NO_EVIDENCE if gate.n_users == 0 else Outcome.REFUSED
            return result
        if opts.dry_run:
            result.outcome = Outcome.PASSED_DRY_RUN
            result.reason = f"{gate.reason}; dry run: nothing trained or published"
            return result
        t = time.perf_counter()
        notes = [
            f"retrained from {cm.bundle_id} on {base_path} plus {len(logged)} events logged in "
            f"{opts.store_name}; gate: {gate.reason}"
        ]
        staged = train_prepared(
            data, cfg, work / "final", seed=cm.seed, make_current=False, extra_notes=notes
        )
        timings["train_challenger"] = time.perf_counter() - t
        final = root / staged.name
        staged.rename(final)
        _publish(root, final.name, opts, gate)
        result.outcome = Outcome.PUBLISHED
        result.challenger = final.name
        result.pruned = registry.prune(root, opts.keep)
        return result
    except BaseException as exc:
        result.outcome = Outcome.FAILED
        result.reason = f"run failed: {exc!r}"
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        timings["total"] = time.perf_counter() - t0
        write_run_report(run_dir, result, rejects)


def _publish(root: Path, bundle_id: str, opts: RetrainOptions, gate: GateResult) -> None:
    """Move ``current`` and audit it; when the audit fails ``current`` moves back."""
    move = registry.move_current(root, bundle_id, "publish", opts.actor, gate.reason)
    if opts.on_publish is None:
        return
    try:
        opts.on_publish(move)
    except Exception:
        if move.previous is not None:
            registry.move_current(
                root, move.previous, "rollback", opts.actor, "the publish could not be audited"
            )
        raise
