"""Pricing commands: ``simulate``, ``pricing report`` and ``guardrails show|set|rollback|history``.

The commands parse arguments and print; the work is done by ``pricing`` and the guardrail
store. Guardrail changes need ``--by`` (who) and ``--reason`` (why); they are versioned and
every change keeps its diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fairshelf.errors import InvalidArgument

pricing_app = typer.Typer(help="Pricing reports.", no_args_is_help=True)
guardrails_app = typer.Typer(
    help="Guardrails per scope: show, set, delete, roll back, history.", no_args_is_help=True
)

DbUrl = Annotated[str, typer.Option("--db", help="Database URL or SQLite file path.")]
Scope = Annotated[
    str, typer.Option(help="'global', 'category:<path>' or 'item:<id>'.", show_default=True)
]
By = Annotated[str, typer.Option("--by", help="Who makes the change (recorded).")]
Reason = Annotated[str, typer.Option(help="Why (recorded).")]


def _console() -> Console:
    return Console(highlight=False)


def _store(db: str) -> Any:
    from serving.store.audit_store import AuditStore
    from serving.store.db import Database
    from serving.store.guardrails_store import GuardrailStore

    # Changes made here are audited like those made over the API (rule G5).
    database = Database(db)
    return GuardrailStore(database, audit=AuditStore(database))


def simulate_cmd(
    store: Annotated[
        Path, typer.Option(help="A synthetic store directory (made by `fairshelf generate`).")
    ],
    weeks: Annotated[int, typer.Option(help="Simulated weeks (7 daily periods each).")] = 8,
    start_error: Annotated[
        float, typer.Option(help="Relative error of the learner's starting elasticities.")
    ] = 0.3,
    policy: Annotated[str, typer.Option(help="Registered pricing policy.")] = "elasticity_optimal",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Take the guardrails from this store instead of the defaults."),
    ] = None,
    switchback: Annotated[
        str | None,
        typer.Option(
            help="Instead: a switchback experiment between these policies (comma separated, "
            "control first), alternating by day."
        ),
    ] = None,
    washout: Annotated[int, typer.Option(help="Switchback: epochs dropped per slot.")] = 0,
) -> None:
    """Run the pricing loop (quote, simulated purchases, weekly refit) against the oracle."""
    from rich.progress import Progress

    from pricing.simulator import (
        DEFAULT_SIM_GUARDRAILS,
        SimulationConfig,
        simulate,
        truth_from_store,
    )
    from training.data.synthetic import load_store

    s = load_store(store)
    truth = truth_from_store(s.items, s.truth_items, s.events)
    guards = _store(db).current() if db else DEFAULT_SIM_GUARDRAILS
    if switchback:
        _print_switchback(truth, guards, switchback, weeks, washout, seed)
        return
    cfg = SimulationConfig(weeks=weeks, start_error=start_error, seed=seed, policy=policy)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("simulating", total=weeks * cfg.periods_per_week)
        res = simulate(
            truth, guards, cfg, progress=lambda done, _t: bar.update(task, completed=done)
        )
    table = Table(title=f"{len(truth)} items, {weeks} weeks, start error {start_error:.0%}")
    for col in ("week", "learner revenue", "oracle revenue", "ratio", "learner margin"):
        table.add_column(col, justify="right")
    wk = res.weekly.pivot(index="week", columns="arm", values=["revenue", "margin"])
    for week, row in wk.iterrows():
        lr, orc = row[("revenue", "learner")], row[("revenue", "oracle")]
        table.add_row(
            str(week),
            f"{lr:,.0f}",
            f"{orc:,.0f}",
            f"{lr / orc:.4f}",
            f"{row[('margin', 'learner')]:,.0f}",
        )
    out = _console()
    out.print(table)
    last = min(4, weeks)
    violations = sum(a.total_violations for a in res.audits.values())
    out.print(
        f"learner/oracle revenue, last {last} weeks: {res.revenue_ratio(last):.4f}; "
        f"guardrail violations (independent audit): {violations} over {res.quotes:,} quotes"
    )


def _print_switchback(
    truth: Any, guards: Any, policies: str, weeks: int, washout: int, seed: int
) -> None:
    from pricing.simulator import simulate_switchback

    names = [p.strip() for p in policies.split(",") if p.strip()]
    res = simulate_switchback(truth, guards, names, weeks=weeks, washout_epochs=washout, seed=seed)
    table = Table(title=f"switchback by day, {weeks} weeks (95 % intervals; diff vs {names[0]})")
    for col in (
        "policy",
        "slots",
        "revenue / slot",
        "revenue diff",
        "margin / slot",
        "margin diff",
    ):
        table.add_column(col, justify="right")
    for r in res.to_dict("records"):
        table.add_row(
            str(r["policy"]),
            str(r["n_slots"]),
            f"{r['revenue_per_slot']:,.0f} "
            f"[{r['revenue_ci_low']:,.0f}, {r['revenue_ci_high']:,.0f}]",
            f"{r['revenue_diff']:+,.0f} [{r['revenue_diff_ci_low']:+,.0f}, "
            f"{r['revenue_diff_ci_high']:+,.0f}]",
            f"{r['margin_per_slot']:,.0f} [{r['margin_ci_low']:,.0f}, {r['margin_ci_high']:,.0f}]",
            f"{r['margin_diff']:+,.0f} [{r['margin_diff_ci_low']:+,.0f}, "
            f"{r['margin_diff_ci_high']:+,.0f}]",
        )
    _console().print(table)


def report_cmd(
    events: Annotated[Path, typer.Option(help="Canonical events Parquet (purchases are used).")],
    items: Annotated[Path, typer.Option(help="Canonical items Parquet (item_id, category).")],
    out: Annotated[Path, typer.Option(help="Directory for pricing_report.md and the PNG.")],
    period: Annotated[str, typer.Option(help="Aggregation period (pandas frequency).")] = "W",
    title: Annotated[str, typer.Option(help="Report heading.")] = "Pricing report",
) -> None:
    """Per-category price elasticities with 95 % intervals (Markdown + PNG)."""
    import pandas as pd

    from pricing.report import write_pricing_report

    ev = pd.read_parquet(events)
    it = pd.read_parquet(items)
    rep = write_pricing_report(
        ev, it, out, title=title, period=period, source_note=f"Events: {events}."
    )
    _console().print(
        f"wrote {rep.markdown} ({len(rep.categories)} categories, {len(rep.items):,} items)"
    )


@guardrails_app.command("show")
def show_cmd(
    db: DbUrl,
    scope: Annotated[str | None, typer.Option(help="Show the rule set at this scope.")] = None,
    item: Annotated[
        str | None, typer.Option(help="Show the effective guardrail of an item.")
    ] = None,
    category: Annotated[str, typer.Option(help="The item's category (with --item).")] = "",
    version: Annotated[int | None, typer.Option(help="Show this version of the set.")] = None,
) -> None:
    """Print the guardrail set (or one scope, or an item's effective guardrail) as JSON."""
    st = _store(db)
    if item is not None:
        payload: Any = st.effective(item, category).to_dict()
    elif scope is not None:
        payload = st.get(scope).to_dict()
    else:
        gs = st.get_version(version) if version is not None else st.current()
        payload = {"version": gs.version, "rules": gs.to_document()}
    typer.echo(json.dumps(payload, indent=2, sort_keys=True))


@guardrails_app.command("set")
def set_cmd(
    db: DbUrl,
    by: By,
    reason: Reason,
    scope: Scope = "global",
    floor: Annotated[float | None, typer.Option()] = None,
    ceiling: Annotated[float | None, typer.Option()] = None,
    min_ratio: Annotated[float | None, typer.Option(help="Lower bound as a share of base.")] = None,
    max_ratio: Annotated[float | None, typer.Option(help="Upper bound as a share of base.")] = None,
    min_margin: Annotated[float | None, typer.Option(help="Over cost, e.g. 0.1.")] = None,
    max_change_pct: Annotated[float | None, typer.Option(help="Per 24 h, e.g. 0.1.")] = None,
    price_ending: Annotated[float | None, typer.Option(help="e.g. 0.99.")] = None,
    objective: Annotated[str | None, typer.Option(help="revenue | margin | sell_through")] = None,
    expected_version: Annotated[
        int | None, typer.Option(help="Refuse if the set changed since this version.")
    ] = None,
) -> None:
    """Set (replace) the rule of one scope; unset fields inherit from broader scopes."""
    from pricing.guardrail_rules import Guardrail, parse_scope_id

    kind, key = parse_scope_id(scope)
    fields = {
        "floor": floor,
        "ceiling": ceiling,
        "min_ratio": min_ratio,
        "max_ratio": max_ratio,
        "min_margin": min_margin,
        "max_change_pct": max_change_pct,
        "price_ending": price_ending,
        "objective": objective,
    }
    rule = Guardrail.from_dict(
        {"scope": kind, "key": key, **{k: v for k, v in fields.items() if v is not None}}
    )
    change = _store(db).put(rule, author=by, reason=reason, expected_version=expected_version)
    typer.echo(json.dumps(change.to_dict(), indent=2, sort_keys=True))


@guardrails_app.command("delete")
def delete_cmd(db: DbUrl, by: By, reason: Reason, scope: Scope = "global") -> None:
    """Remove the rule of one scope (its fields then inherit)."""
    change = _store(db).delete(scope, author=by, reason=reason)
    typer.echo(json.dumps(change.to_dict(), indent=2, sort_keys=True))


@guardrails_app.command("rollback")
def rollback_cmd(
    db: DbUrl,
    by: By,
    reason: Reason,
    version: Annotated[int, typer.Option(help="The version to restore.")],
) -> None:
    """Restore an earlier version as a new version (history is kept)."""
    change = _store(db).rollback(version, author=by, reason=reason)
    typer.echo(json.dumps(change.to_dict(), indent=2, sort_keys=True))


@guardrails_app.command("history")
def history_cmd(
    db: DbUrl, limit: Annotated[int, typer.Option(help="How many changes.")] = 20
) -> None:
    """Who changed what, when and why, newest first."""
    if limit < 1:
        raise InvalidArgument(f"limit must be >= 1, got {limit}", field="limit")
    rows = [c.to_dict() for c in _store(db).history(limit)]
    typer.echo(json.dumps(rows, indent=2, sort_keys=True))


pricing_app.command("report")(report_cmd)


def register(app: typer.Typer) -> None:
    """Add ``simulate``, ``pricing`` and ``guardrails`` to the ``fairshelf`` app."""
    app.command("simulate")(simulate_cmd)
    app.add_typer(pricing_app, name="pricing")
    app.add_typer(guardrails_app, name="guardrails")
