"""``fairshelf bundles list|show|promote|rollback``: what is in a bundles directory, and which
bundle serves.

``promote`` and ``rollback`` take the bundles directory's lock (as ``retrain`` does), move
``current`` and record who and why in the audit log; a running server picks the move up at its
next reload poll. The registry logic is :mod:`training.retrain.registry`.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

bundles_app = typer.Typer(
    name="bundles",
    help="List and inspect bundles; promote one or roll back (audited).",
    no_args_is_help=True,
)

BundlesOption = Annotated[Path, typer.Option("--bundles", help="bundles directory")]
DbOption = Annotated[str, typer.Option("--db", help="database URL holding the audit log")]
ReasonOption = Annotated[str, typer.Option("--reason", help="why (recorded in the audit log)")]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="who (default: the login name); recorded")
]
LockWaitOption = Annotated[
    float, typer.Option("--lock-wait", min=0.0, help="seconds to wait for a running job")
]


def _metric(
    metrics: dict[str, dict[str, dict[str, float]]], gate: dict[str, float], model: str, name: str
) -> str:
    """The evaluation's figure, else the retraining gate's (marked ``g``)."""
    v = metrics.get("all", {}).get(model, {}).get(name)
    if v is not None:
        return f"{v:.4f}"
    return f"{gate[name]:.4f} g" if name in gate else ""


@bundles_app.command("list")
def list_cmd(bundles: BundlesOption) -> None:
    """Every bundle, oldest first: current marker, data range, size, Recall/NDCG@20.

    Metrics come from the bundle's own evaluation (train --eval-cut), else from the
    retraining gate that published it (marked g).
    """
    from training.retrain.registry import gate_metrics, list_bundles

    gates = gate_metrics(bundles)
    table = Table(title=str(bundles))
    for col in ("", "bundle", "created", "data from", "data to", "events", "shoppers", "items"):
        table.add_column(col)
    table.add_column("recall@20", justify="right")
    table.add_column("ndcg@20", justify="right")
    for e in list_bundles(bundles):
        d = e.manifest.data
        model = e.manifest.model
        table.add_row(
            "*" if e.is_current else "",
            e.bundle_id,
            e.manifest.created_at.isoformat(timespec="seconds"),
            d.first_event.isoformat(timespec="seconds") if d.first_event else "",
            d.last_event.isoformat(timespec="seconds") if d.last_event else "",
            f"{d.n_events:,}",
            f"{d.n_users:,}",
            f"{d.n_items:,}",
            _metric(e.manifest.metrics, gates.get(e.bundle_id, {}), model, "recall@20"),
            _metric(e.manifest.metrics, gates.get(e.bundle_id, {}), model, "ndcg@20"),
        )
    Console(highlight=False, width=200).print(table)


@bundles_app.command("show")
def show_cmd(
    bundle_id: Annotated[str, typer.Argument(help="bundle id (directory name)")],
    bundles: BundlesOption,
) -> None:
    """One bundle's manifest summary: data range, sizes, dropped rows, metrics, timings."""
    from training.retrain.registry import gate_metrics, get_bundle

    e = get_bundle(bundles, bundle_id)
    m = e.manifest
    out = {
        "bundle_id": m.bundle_id,
        "current": e.is_current,
        "created_at": m.created_at.isoformat(),
        "model": m.model,
        "seed": m.seed,
        "data": m.data.model_dump(mode="json"),
        "metrics": m.metrics,
        "gate": gate_metrics(bundles).get(m.bundle_id),
        "timings_seconds": m.timings_seconds,
        "path": str(e.path),
    }
    typer.echo(json.dumps(out, indent=2))


def _move(
    bundles: Path,
    db: str,
    target: str | None,
    action: str,
    actor: str | None,
    reason: str,
    wait: float,
) -> None:
    from fairshelf.errors import InvalidArgument
    from serving.store.audit_store import AuditStore
    from serving.store.db import Database
    from training.retrain.audit import audit_move
    from training.retrain.locks import bundles_lock
    from training.retrain.registry import Move, move_current, rollback_target

    who = actor or getpass.getuser()
    if not reason.strip():
        raise InvalidArgument("--reason must say why", field="reason")
    database = Database(db)
    try:
        audit = AuditStore(database)
        with bundles_lock(bundles, wait):
            bundle_id = target if target is not None else rollback_target(bundles)
            move: Move = move_current(bundles, bundle_id, action, who, reason)
            try:
                record = audit_move(audit, move, str(bundles))
            except Exception:
                if move.previous is not None:
                    move_current(bundles, move.previous, "rollback", who, "audit failed")
                raise
    finally:
        database.close()
    Console(highlight=False, markup=False).print(
        f"current -> {move.bundle_id} (was {move.previous}); audit seq {record.seq}"
    )


@bundles_app.command("promote")
def promote_cmd(
    bundle_id: Annotated[str, typer.Argument(help="bundle to make current")],
    bundles: BundlesOption,
    db: DbOption,
    reason: ReasonOption,
    actor: ActorOption = None,
    lock_wait: LockWaitOption = 0.0,
) -> None:
    """Make a bundle current (servers reload it), recording who and why."""
    _move(bundles, db, bundle_id, "promote", actor, reason, lock_wait)


@bundles_app.command("rollback")
def rollback_cmd(
    bundles: BundlesOption,
    db: DbOption,
    reason: ReasonOption,
    actor: ActorOption = None,
    lock_wait: LockWaitOption = 0.0,
) -> None:
    """Make the bundle that served before the current one current again, recording who and why."""
    _move(bundles, db, None, "rollback", actor, reason, lock_wait)


def register(app: typer.Typer) -> None:
    """Add the ``bundles`` command group to ``app``."""
    app.add_typer(bundles_app, name="bundles")
