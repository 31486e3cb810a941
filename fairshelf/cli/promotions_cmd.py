"""``fairshelf promotions list|publish|end``: the published, time-boxed promotions.

Changes made here are versioned and chained into the fairness audit log exactly like those
made over the API (``PUT /v1/promotions/{name}``); a running server picks them up within one
poll interval.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from serving.store.promotions_store import PromotionStore

promotions_app = typer.Typer(
    help="Published promotions: list, publish, end (versioned and audited).",
    no_args_is_help=True,
)

DbUrl = Annotated[str, typer.Option("--db", help="Database URL or SQLite file path.")]
By = Annotated[str, typer.Option("--by", help="Who makes the change (recorded).")]
Reason = Annotated[str, typer.Option(help="Why (recorded).")]
Name = Annotated[str, typer.Option(help="The promotion's code, e.g. 'spring-sale'.")]


@contextmanager
def _store(db: str) -> Iterator[PromotionStore]:
    from serving.store.audit_store import AuditStore
    from serving.store.db import Database
    from serving.store.promotions_store import PromotionStore

    database = Database(db)
    try:
        yield PromotionStore(database, audit=AuditStore(database))
    finally:
        database.close()


def _print(fn: Callable[[PromotionStore], object], db: str) -> None:
    with _store(db) as store:
        out = fn(store)
    dump = getattr(out, "model_dump", None)
    typer.echo(json.dumps(dump() if dump else out, indent=2, sort_keys=True))


@promotions_app.command("list")
def list_cmd(db: DbUrl) -> None:
    """Every published promotion, the ones running now and the latest changes."""
    _print(lambda store: store.list_out(), db)


@promotions_app.command("publish")
def publish_cmd(
    db: DbUrl,
    by: By,
    reason: Reason,
    name: Name,
    title: Annotated[str, typer.Option(help="Public title.")],
    description: Annotated[str, typer.Option(help="Public text: what the promotion is.")],
    ends_at: Annotated[str, typer.Option(help="RFC 3339 end (exclusive).")],
    starts_at: Annotated[str, typer.Option(help="RFC 3339 start; default now.")] = "",
) -> None:
    """Publish a time-boxed promotion; every quote in its window carries it."""
    from serving.api_promotions import PublishPromotionIn

    body = PublishPromotionIn(
        title=title, description=description, starts_at=starts_at, ends_at=ends_at, reason=reason
    )
    _print(lambda store: store.publish_out(name, body, by), db)


@promotions_app.command("end")
def end_cmd(db: DbUrl, by: By, reason: Reason, name: Name) -> None:
    """End a promotion now (one that has not started is withdrawn)."""
    from serving.api_promotions import EndPromotionIn

    _print(lambda store: store.end_out(name, EndPromotionIn(reason=reason), by), db)


def register(app: typer.Typer) -> None:
    """Add the ``promotions`` command group to ``app``."""
    app.add_typer(promotions_app, name="promotions")
