"""``fairshelf audit``: verify, export and report on the fairness audit log (rules G3-G5).

``verify`` exits 0 when the chain is intact and 1 when it is not, naming the first bad record
and what happened to it (edited, deleted, reordered, inserted, truncated), so it can gate a
cron job or a regulator's script. With ``--db`` it also recomputes every sealed quote batch,
and with ``--checkpoints`` and ``--public-key`` it checks the signed checkpoints kept outside
the database against the log. ``keygen`` makes the checkpoint signing key pair.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from fairshelf.errors import InvalidArgument

# The stores pull in SQLAlchemy and the evidence code the cryptography package: imported by
# the commands that use them, so that `fairshelf --help` does not pay for them.
if TYPE_CHECKING:
    from collections.abc import Iterator

    from pricing.fairness.audit_chain import ChainReport
    from pricing.fairness.evidence import EvidenceReport
    from serving.store.db import Database

audit_app = typer.Typer(
    name="audit",
    help="Fairness audit log: verify the hash chain, export it, report on prices.",
    no_args_is_help=True,
)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL or SQLite path holding the audit log.")
]


@contextmanager
def _database(db: str | None) -> Iterator[Database]:
    """The database named by ``--db`` (required), closed when the command is done."""
    from serving.store.db import Database

    if db is None:
        raise InvalidArgument("--db is required", field="db")
    database = Database(db)
    try:
        yield database
    finally:
        database.close()


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
    checkpoints: Annotated[
        list[str] | None,
        typer.Option(
            "--checkpoints",
            help="Signed checkpoints: a directory, a database URL or a JSON log file "
            "(repeat for several sinks; with --db).",
        ),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option("--public-key", help="Checkpoint public key, PEM (repeat for rotated keys)."),
    ] = None,
) -> None:
    """Check the hash chain, every quote batch and every checkpoint; exit 1 on a break."""
    from pricing.fairness.audit_export import verify_export
    from pricing.fairness.checkpoints import load_public_keys
    from pricing.fairness.evidence import CheckpointSource, verify_evidence
    from serving.store.audit_store import AuditStore
    from serving.store.checkpoint_sinks import read_source
    from serving.store.db import Database
    from serving.store.quote_store import QuoteStore

    if file is not None and db is None:
        if checkpoints:
            raise InvalidArgument("--checkpoints needs --db", field="checkpoints")
        if not file.is_file():
            raise FileNotFoundError(f"no such file: {file}")
        report = verify_export(file)
        _print_chain(report, str(file))
        if not report.ok:
            raise typer.Exit(code=1)
        return
    if db is None or file is not None:
        raise InvalidArgument("give exactly one of --db or --file", field="db")
    if checkpoints and not public_key:
        raise InvalidArgument("--checkpoints needs --public-key", field="public_key")
    keys = load_public_keys(public_key or [])
    sources = [CheckpointSource(*read_source(spec)) for spec in checkpoints or []]
    database = Database(db)
    try:
        audit = AuditStore(database)
        # The head, then the records, then the rows: each read sees all the one before saw.
        anchor = audit.anchor()
        records = list(audit.records())
        evidence = verify_evidence(
            records,
            anchor,
            QuoteStore(database).batch_rows(),
            sources,
            keys,
            later=audit.records_between,
        )
    finally:
        database.close()
    _print_evidence(evidence)
    if not evidence.ok:
        raise typer.Exit(code=1)


def _print_evidence(report: EvidenceReport) -> None:
    out = Console(soft_wrap=True)  # paths and hashes stay on one line for scripts
    chain = report.chain
    out.print(
        f"audit log: {chain.records} records, chain {'intact' if chain.ok else 'BROKEN'}; "
        f"quote log: {report.batches.rows} quotes in {report.batches.batches} sealed batches",
        highlight=False,
    )
    for line in report.checked:
        out.print(f"checkpoints: {line}", highlight=False)
    for note in report.notes:
        out.print(f"note: {note}", highlight=False)
    if report.ok:
        what = "chain, batches and checkpoints" if report.anchored else "internal consistency"
        out.print(f"[green]OK[/] {what} verified", highlight=False)
        return
    first = report.findings[0]
    at = f" at seq {first.seq}" if first.seq is not None else ""
    out.print(
        f"[bold red]BROKEN[/] first break: {first.kind}{at}: {first.message}", highlight=False
    )
    for f in report.findings[1:]:
        out.print(f"  also: {f.kind}: {f.message}", highlight=False)


@audit_app.command("keygen")
def keygen(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Private key file to write (PEM); the public key goes to the same name with .pub.",
        ),
    ],
) -> None:
    """Make an Ed25519 key pair for signing checkpoints (the private file is made 0600)."""
    from pricing.fairness.checkpoints import generate_key_pair, load_public_keys

    public_path = out.with_name(out.name + ".pub")
    for path in (out, public_path):
        if path.exists():
            raise InvalidArgument(f"{path} exists; not overwriting a key", field="out")
    private_pem, public_pem = generate_key_pair()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    public_path.write_bytes(public_pem)
    keys = load_public_keys([public_path])
    Console().print(
        f"wrote {out} (private, keep secret) and {public_path} (public); key id {next(iter(keys))}",
        highlight=False,
    )


@audit_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="Output file (JSON Lines).")],
    db: DbOption = None,
) -> None:
    """Export the audit log with a trailer anchor, for independent verification."""
    from pricing.fairness.audit_export import write_export
    from pricing.fairness.report import verify_audit_log
    from serving.store.audit_store import AuditStore

    with _database(db) as database:
        store = AuditStore(database)
        result = write_export(store.records(), store.anchor(), out)
        report = verify_audit_log(store)
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
    from pricing.fairness.report import build_report
    from serving.store.audit_store import AuditStore
    from serving.store.quote_store import QuoteStore

    with _database(db) as database:
        files, summary, chain = build_report(QuoteStore(database), AuditStore(database), out)
    Console().print(
        f"wrote {files.markdown}, {files.dispersion_png.name}, {files.violations_png.name}: "
        f"{summary.quotes} quotes, G3 violations {len(summary.g3)}, G4 violations "
        f"{len(summary.g4)}, audit chain {'intact' if chain.ok else 'BROKEN'}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to ``app``."""
    app.add_typer(audit_app, name="audit")
