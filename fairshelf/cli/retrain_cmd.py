"""``fairshelf retrain``: the retraining loop for cron (see ``docs/retraining.md``).

Argument parsing, the locks, the event log and the audit log; the loop itself is
:mod:`training.retrain.run`. The process exits with the code of the run's outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

InvalidRowsOption = Annotated[
    str,
    typer.Option(
        "--invalid-rows",
        help="fail: stop at the first row that breaks the data contract; skip: set such rows "
        "aside in rejects.csv (reason per row) and go on",
    ),
]


def check_invalid_rows(value: str) -> str:
    """The ``--invalid-rows`` value, or a clear error."""
    from fairshelf.errors import InvalidArgument

    if value not in ("fail", "skip"):
        raise InvalidArgument(
            f"--invalid-rows must be fail or skip, got {value!r}", field="invalid_rows"
        )
    return value


def retrain_cmd(
    db: Annotated[str, typer.Option("--db", help="database URL of the server's event log")],
    bundles: Annotated[Path, typer.Option("--bundles", help="bundles directory (with current)")],
    base_events: Annotated[
        Path | None,
        typer.Option("--base-events", help="history before the event log (default: champion's)"),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option("--items", help="the catalogue's current items (default: champion's)"),
    ] = None,
    window_days: Annotated[
        int, typer.Option("--window-days", min=1, help="longest evaluation window (days)")
    ] = 7,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", min=0.0, help="largest drop in Recall@20/NDCG@20 accepted"),
    ] = 0.02,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="run the gate only; train and publish nothing")
    ] = False,
    keep: Annotated[
        int, typer.Option("--keep", min=1, help="bundles to keep (current and previous always)")
    ] = 5,
    invalid_rows: InvalidRowsOption = "fail",
    lock_wait: Annotated[
        float, typer.Option("--lock-wait", min=0.0, help="seconds to wait for another job")
    ] = 0.0,
    progress: Annotated[bool, typer.Option("--progress", help="progress bars")] = False,
) -> None:
    """Retrain from the event log, gate the challenger against the champion, publish or refuse.

    Exit codes: 0 published (or gate passed with --dry-run), 1 run failed, 2 bad input,
    3 refused by the gate, 4 nothing new or nothing to compare, 5 another job holds the lock.
    """
    from datetime import datetime

    import pandas as pd

    from fairshelf.errors import NotFound
    from serving.store.advisory_lock import AdvisoryLockBusy, advisory_lock
    from serving.store.audit_store import AuditStore
    from serving.store.db import Database
    from serving.store.events_store import EventsStore
    from training.retrain.audit import audit_move
    from training.retrain.locks import LockBusy, bundles_lock
    from training.retrain.outcome import EXIT_LOCKED
    from training.retrain.registry import Move
    from training.retrain.run import RetrainOptions, retrain

    check_invalid_rows(invalid_rows)
    if not bundles.is_dir():
        raise NotFound(f"no such bundles directory: {bundles}", field="bundles")
    console = Console(highlight=False, markup=False, soft_wrap=True)
    database = Database(db)
    try:
        store = EventsStore(database)
        audit = AuditStore(database)

        def read_store(since: datetime | None) -> pd.DataFrame:
            return store.read_canonical(since=since)

        def on_publish(move: Move) -> None:
            audit_move(audit, move, str(bundles))

        opts = RetrainOptions(
            bundles_dir=bundles,
            read_store=read_store,
            store_name=_safe_url(db),
            base_events=base_events,
            items=items,
            window_days=window_days,
            tolerance=tolerance,
            dry_run=dry_run,
            keep=keep,
            invalid_rows=invalid_rows,  # type: ignore[arg-type]
            show_progress=progress,
            on_publish=on_publish,
        )
        try:
            with (
                bundles_lock(bundles, lock_wait),
                advisory_lock(database, f"fairshelf-retrain:{bundles.resolve()}", lock_wait),
            ):
                result = retrain(opts)
        except (LockBusy, AdvisoryLockBusy) as exc:
            Console(stderr=True, highlight=False, markup=False).print(f"locked: {exc}")
            raise typer.Exit(code=EXIT_LOCKED) from None
    finally:
        database.close()
    console.print(f"{result.outcome}: {result.reason}")
    if result.gate is not None:
        for name, c in result.gate.comparisons.items():
            console.print(
                f"  {name}: champion {c.champion:.4f}, challenger {c.challenger:.4f}, "
                f"difference {c.difference:+.4f} [{c.low:+.4f}, {c.high:+.4f}]"
            )
    if result.challenger:
        console.print(f"current -> {result.challenger}")
    if result.rejects:
        console.print("invalid rows: " + ", ".join(f"{k} {v}" for k, v in result.rejects.items()))
    console.print(f"report: {result.run_dir / 'report.md'}")
    raise typer.Exit(code=result.exit_code)


def _safe_url(url: str) -> str:
    """The database URL without a password, for reports."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url if "://" in url else f"sqlite:///{url}").render_as_string(
            hide_password=True
        )
    except Exception:
        return "database"


def register(app: typer.Typer) -> None:
    """Add ``retrain`` to ``app``."""
    app.command("retrain")(retrain_cmd)
