"""``fairshelf experiments``: readouts of recommendation experiments and price switchbacks,
and sample-size plans from the store's own history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from fairshelf.errors import InvalidArgument

experiments_app = typer.Typer(
    name="experiments",
    help="Experiment readouts (effects, CUPED, sequential intervals) and sample-size plans.",
    no_args_is_help=True,
)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL or SQLite path (exposures and events).")
]


def _time(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(
            f"--{field} is not an ISO date or time: {value!r}", field=field
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def _split(value: str | None) -> dict[str, float] | None:
    if not value:
        return None
    out: dict[str, float] = {}
    for part in value.split(","):
        name, _, share = part.partition("=")
        try:
            out[name.strip()] = float(share)
        except ValueError:
            raise InvalidArgument(
                f"--split must look like a=0.5,b=0.5, got {value!r}", field="split"
            ) from None
    return out


@experiments_app.command("report")
def report(
    experiment: Annotated[str, typer.Option("--experiment", help="Experiment name.")],
    db: DbOption = None,
    since: Annotated[str | None, typer.Option(help="Start of the window (ISO time).")] = None,
    until: Annotated[str | None, typer.Option(help="End of the window (ISO time).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md, json or html.")] = "md",
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("report"),
    split: Annotated[
        str | None, typer.Option(help="Configured split, e.g. default=0.5,als=0.5 (for SRM).")
    ] = None,
    control: Annotated[str | None, typer.Option(help="Control variant.")] = None,
    window_hours: Annotated[
        float, typer.Option(help="Credit window of a shown item, hours.")
    ] = 168.0,
) -> None:
    """Write the readout of an experiment: balance, effects, CUPED, sequential, Holm, plots."""
    from experiments.render import to_markdown, write_report
    from serving.experiment_reports import ExperimentReports
    from serving.store.db import Database

    if db is None:
        raise InvalidArgument("--db is required", field="db")
    if fmt not in ("md", "json", "html"):
        raise InvalidArgument(f"--format must be md, json or html, got {fmt!r}", field="format")
    if not window_hours > 0:
        raise InvalidArgument(f"--window-hours must be > 0, got {window_hours}", field="window")
    shares = _split(split)
    database = Database(db)
    try:
        reports = ExperimentReports(database, {experiment: shares} if shares else None)
        readout = reports.readout(
            experiment,
            _time(since, "since"),
            _time(until, "until"),
            window=timedelta(hours=window_hours),
            control=control,
        )
    finally:
        database.close()
    files = write_report(readout, out, fmt)  # type: ignore[arg-type]
    typer.echo(to_markdown(readout))
    typer.echo(f"wrote {files.report}")


@experiments_app.command("plan")
def plan(
    metric: Annotated[str, typer.Option("--metric", help="conversion, revenue_per_shopper, ...")],
    mde: Annotated[float, typer.Option("--mde", help="Smallest effect worth detecting.")],
    db: DbOption = None,
    power: Annotated[float, typer.Option(help="Chance to detect an effect of size mde.")] = 0.8,
    alpha: Annotated[float, typer.Option(help="Two-sided significance level.")] = 0.05,
    absolute: Annotated[
        bool, typer.Option("--absolute", help="mde in the metric's units, not relative.")
    ] = False,
    history_days: Annotated[int, typer.Option(help="Length of each history window.")] = 14,
) -> None:
    """Shoppers and days two equal variants need, with and without CUPED."""
    from experiments.planning import plan as make_plan
    from serving.experiment_reports import ExperimentReports
    from serving.store.db import Database

    if db is None:
        raise InvalidArgument("--db is required", field="db")
    database = Database(db)
    try:
        units, cumulative = ExperimentReports(database).history(history_days)
    finally:
        database.close()
    p = make_plan(
        units, cumulative, metric=metric, mde=mde, relative=not absolute, alpha=alpha, power=power
    )
    days = "more than the history shows" if p.days is None else str(p.days)
    days_c = "more than the history shows" if p.days_cuped is None else str(p.days_cuped)
    typer.echo(
        f"{metric}: baseline {p.baseline:.4g}, per-shopper sd {p.unit_sd:.4g}, "
        f"correlation with the pre-period {p.rho:.3f} ({p.history_shoppers} shoppers, "
        f"{p.history_days} days)\n"
        f"to detect {p.mde_absolute:.4g} ({p.mde_relative:.2%}) at alpha {alpha}, power {power}:\n"
        f"  without CUPED: {p.shoppers_per_variant} shoppers per variant, about {days} days\n"
        f"  with CUPED:    {p.shoppers_per_variant_cuped} shoppers per variant, "
        f"about {days_c} days",
    )


@experiments_app.command("switchback")
def switchback(
    store: Annotated[Path, typer.Option(help="A synthetic store directory (its true demand).")],
    policies: Annotated[str, typer.Option(help="Policies, comma separated, control first.")],
    weeks: Annotated[int, typer.Option(help="Simulated weeks (one slot per day).")] = 8,
    washout: Annotated[int, typer.Option(help="Epochs dropped at the start of a slot.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the slot order and the demand.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="md, json or html.")] = "md",
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("report"),
) -> None:
    """Simulate a price switchback on a store and write its readout (the slot is the unit)."""
    from experiments.render import to_markdown, write_report
    from experiments.switchback_readout import switchback_readout
    from pricing.simulator import DEFAULT_SIM_GUARDRAILS, switchback_epochs, truth_from_store
    from training.data.synthetic import load_store

    if fmt not in ("md", "json", "html"):
        raise InvalidArgument(f"--format must be md, json or html, got {fmt!r}", field="format")
    names = [p.strip() for p in policies.split(",") if p.strip()]
    if weeks < 1:
        raise InvalidArgument(f"--weeks must be >= 1, got {weeks}", field="weeks")
    s = load_store(store)
    truth = truth_from_store(s.items, s.truth_items, s.events)
    epochs = switchback_epochs(truth, DEFAULT_SIM_GUARDRAILS, names, weeks=weeks, seed=seed)
    readout = switchback_readout(
        epochs,
        name="switchback " + " vs ".join(names),
        epochs_per_slot=1,
        washout_epochs=washout,
        control=names[0],
    )
    files = write_report(readout, out, fmt)  # type: ignore[arg-type]
    typer.echo(to_markdown(readout))
    typer.echo(f"wrote {files.report}")


def register(app: typer.Typer) -> None:
    """Add the ``experiments`` command group to ``app``."""
    app.add_typer(experiments_app, name="experiments")
