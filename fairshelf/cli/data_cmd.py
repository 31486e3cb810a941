"""``fairshelf data ...`` (import, summary, validate) and ``fairshelf generate``.

The commands only parse arguments and print; the work is done by ``training.data``. Domain
errors (bad files, bad arguments) propagate to ``fairshelf.cli.main``, which prints one line and
exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fairshelf.errors import InvalidArgument

data_app = typer.Typer(help="Import, validate and summarise event data.", no_args_is_help=True)
import_app = typer.Typer(
    help="Convert a public data set into the canonical tables.", no_args_is_help=True
)
data_app.add_typer(import_app, name="import")

OutDir = Annotated[Path, typer.Option("--out", help="Directory to write the canonical tables.")]


def _console() -> Console:
    # Paths and reasons are data, not markup: a "[" in a file name must print as is.
    return Console(highlight=False, markup=False)


def _print_import(report: Any, out: Path) -> None:
    console = _console()
    console.print(f"wrote {report.events:,} events to {out} (from {report.source_rows:,} rows)")
    for reason, count in report.dropped.items():
        console.print(f"  dropped {count:>9,}  {reason}")
    for what, count in report.converted.items():
        console.print(f"  kept    {count:>9,}  {what}")


@import_app.command("online-retail")
def import_online_retail_cmd(
    src: Annotated[Path, typer.Argument(help="online_retail.parquet (or a CSV, same columns)")],
    out: OutDir,
) -> None:
    """Import the UCI Online Retail file (purchases, cancellations as returns)."""
    from training.data.adapters.online_retail import import_online_retail

    report = import_online_retail(src, out)
    _print_import(report, out)


@import_app.command("movielens")
def import_movielens_cmd(
    src: Annotated[Path, typer.Argument(help="MovieLens 100k folder (ratings, items, users)")],
    out: OutDir,
) -> None:
    """Import MovieLens 100k (ratings as views; ratings >= 4 also as purchases)."""
    from training.data.adapters.movielens import import_movielens

    report = import_movielens(src, out)
    _print_import(report, out)


def _reference_table(reference: dict[str, Any]) -> Table | None:
    """Side-by-side figures for reconciling an import with the source's documentation."""
    columns = {k: v for k, v in reference.items() if isinstance(v, dict)}
    if not columns:
        return None
    keys: list[str] = []
    for values in columns.values():
        keys.extend(k for k in values if k not in keys)
    table = Table(title="reconciliation with the source")
    table.add_column("figure")
    for name in columns:
        table.add_column(name.replace("_", " "), justify="right")
    for key in keys:
        table.add_row(key, *(f"{v[key]:,}" if key in v else "" for v in columns.values()))
    return table


@data_app.command("summary")
def summary_cmd(
    directory: Annotated[Path, typer.Argument(help="Dataset directory (events, items, users)")],
) -> None:
    """Print rows, users, items, date range, events per type and dropped rows by reason."""
    from training.data.summary import summarize_dataset

    s = summarize_dataset(directory)
    table = Table(title=f"dataset {directory}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("event rows", f"{s.rows:,}")
    table.add_row("users (in events)", f"{s.users:,}")
    table.add_row("items (in events)", f"{s.items:,}")
    if s.catalog_items is not None:
        table.add_row("items (catalog)", f"{s.catalog_items:,}")
    if s.profile_users is not None:
        table.add_row("users (profiles)", f"{s.profile_users:,}")
    table.add_row("sessions", f"{s.sessions:,}")
    table.add_row("first event (UTC)", s.first.isoformat())
    table.add_row("last event (UTC)", s.last.isoformat())
    for kind, count in s.events_by_type.items():
        table.add_row(f"events: {kind}", f"{count:,}")
    table.add_row("purchase rows", f"{s.purchases['rows']:,}")
    table.add_row("purchasing users", f"{s.purchases['users']:,}")
    table.add_row("purchased items", f"{s.purchases['items']:,}")
    table.add_row("sessions with a purchase", f"{s.purchases['sessions']:,}")
    if s.source_rows is not None:
        table.add_row("source rows", f"{s.source_rows:,}")
    for reason, count in s.dropped.items():
        table.add_row(f"dropped: {reason}", f"{count:,}")
    if s.source_rows is not None:
        table.add_row("dropped: total", f"{s.dropped_total:,}")
    console = _console()
    console.print(table)
    reference = _reference_table(s.reference)
    if reference is not None:
        console.print(reference)
        for key, value in s.reference.items():
            if not isinstance(value, dict):
                console.print(f"{key.replace('_', ' ')}: {value:,}")


@data_app.command("validate")
def validate_cmd(
    directory: Annotated[Path, typer.Argument(help="Dataset directory (events, items, users)")],
) -> None:
    """Check every table against the data contract; exit 2 naming the first bad cell."""
    from training.data.readers import read_dataset

    events, items, users = read_dataset(directory)
    console = _console()
    parts = [f"events {len(events):,} rows"]
    if items is not None:
        parts.append(f"items {len(items):,} rows")
        unknown = int((~events["item_id"].isin(items["item_id"])).sum())
        if unknown:
            console.print(f"note: {unknown:,} events name an item missing from the items file")
    if users is not None:
        parts.append(f"users {len(users):,} rows")
    console.print(f"valid: {', '.join(parts)}")


def generate_cmd(
    out: OutDir,
    users: Annotated[int, typer.Option(help="Number of shoppers.")] = 1000,
    items: Annotated[int, typer.Option(help="Catalog size (at least 10).")] = 200,
    days: Annotated[int, typer.Option(help="Length of the event window in days.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same store).")] = 0,
    start: Annotated[str, typer.Option(help="First day of the window (UTC).")] = "2026-01-01",
) -> None:
    """Generate a synthetic storefront with known ground truth (events, items, users, truth)."""
    from training.data.synthetic import generate_store

    if users > 5_000_000 or items > 1_000_000 or days > 3_650:
        raise InvalidArgument(
            "too large for one machine: keep users <= 5,000,000, items <= 1,000,000, days <= 3,650"
        )
    with Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task("starting", total=1.0)

        def progress(stage: str, fraction: float) -> None:
            bar.update(task, completed=fraction, description=stage)

        paths = generate_store(
            out, users=users, items=items, days=days, seed=seed, start=start, progress=progress
        )
    from training.data.summary import summarize_dataset

    s = summarize_dataset(paths.root)
    _console().print(
        f"wrote {s.rows:,} events ({s.events_by_type['purchase']:,} purchases), "
        f"{s.catalog_items:,} items, {s.profile_users:,} users and the ground truth to "
        f"{paths.root}"
    )


def register(app: typer.Typer) -> None:
    """Add ``data`` and ``generate`` to the ``fairshelf`` app."""
    app.add_typer(data_app, name="data")
    app.command("generate")(generate_cmd)
