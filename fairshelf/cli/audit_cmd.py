"""``fairshelf audit``: verify, export and report on the fairness audit log (rules G3-G5).

``verify`` exits 0 when the chain is intact and 1 when it is not, naming the first bad record
and what happened to it (edited, deleted, reordered, inserted, truncated), so it can gate a
cron job or a regulator's script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fairshelf.errors import InvalidArgument
from pricing.fairness.audit_chain import ChainReport
from pricing.fairness.audit_export import verify_export, write_export
from pricing.fairness.report import build_report, verify_audit_log
from serving.store.audit_store import AuditStore
from serving.store.db import Database
from serving.store.quote_store import QuoteStore

audit_app = typer.Typer(
    name="audit",
    help="Fairness audit log: verify the hash chain, export it, report on prices.",
    no_args_is_help=True,
)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL or SQLite path holding the audit log.")
]


def _print_chain(report: ChainReport, where: str) -> None:
    out = Console()
    if report.ok:
        head = f"; head seq {report.head.seq} hash {report.head.hash}" if report.head else ""
        out.print(f"[green]OK[/] {where}: {report.message}{head}", highlight=False)
    else:
        out.print(
            f"[bold red]BROKEN[/] {where}: {report.problem} at seq {report.bad_seq}: "
            f"{report.message}",
            highlight=False,
        )


@audit_app.command("verify")
def verify(
    db: DbOption = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="An exported audit log (JSON Lines).")
    ] = None,
) -> None:
    """Walk the hash chain; exit 1 and name the first bad record if it was tampered with."""
    if file is not None and db is None:
        if not file.is_file():
            raise FileNotFoundError(f"no such file: {file}")
        report = verify_export(file)
        _print_chain(report, str(file))
    elif db is not None and file is None:
        database = Database(db)
        try:
            report = verify_audit_log(AuditStore(database))
        finally:
            database.close()
        _print_chain(report, "audit log")
    else:
        raise InvalidArgument("give exactly one of --db or --file", field="db")
    if not report.ok:
        raise typer.Exit(code=1)


@audit_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Output file (JSON Lines).")],
    db: DbOption = None,
) -> None:
    """Export the audit log with a trailer anchor, for independent verification."""
    if db is None:
        raise InvalidArgument("--db is required", field="db")
    database = Database(db)
    try:
        store = AuditStore(database)
        result = write_export(store.records(), store.anchor(), out)
        report = verify_audit_log(store)
    finally:
        database.close()
    head = f"head seq {result.head.seq} hash {result.head.hash}" if result.head else "empty log"
    Console().print(f"wrote {result.records} records to {result.path} ({head})", highlight=False)
    if not report.ok:
        _print_chain(report, "audit log (exported as is)")
        raise typer.Exit(code=1)


@audit_app.command("report")
def report(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    db: DbOption = None,
) -> None:
    """Write the fairness report: Markdown plus price-dispersion and violations charts."""
    if db is None:
        raise InvalidArgument("--db is required", field="db")
    database = Database(db)
    try:
        files, summary, chain = build_report(QuoteStore(database), AuditStore(database), out)
    finally:
        database.close()
    Console().print(
        f"wrote {files.markdown}, {files.dispersion_png.name}, {files.violations_png.name}: "
        f"{summary.quotes} quotes, G3 violations {len(summary.g3)}, G4 violations "
        f"{len(summary.g4)}, audit chain {'intact' if chain.ok else 'BROKEN'}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to ``app``."""
    app.add_typer(audit_app, name="audit")
