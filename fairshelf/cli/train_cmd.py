"""``fairshelf train`` and ``fairshelf evaluate``: the offline trainer's command line.

Argument parsing and printing only; the work is done by :mod:`training.trainer` and
:mod:`training.reevaluate`. Heavy imports happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fairshelf.cli.retrain_cmd import InvalidRowsOption, check_invalid_rows

MODES = ("all", "novel")


def metrics_table(metrics: dict[str, dict[str, dict[str, float]]], k: int) -> Table:
    """Recall and NDCG at ``k`` per model in both modes (the rest is in the report)."""
    table = Table(title=f"metrics @ {k}")
    table.add_column("model")
    for mode in MODES:
        for name in ("recall", "ndcg"):
            table.add_column(f"{mode} {name}", justify="right")
    models = sorted(
        {name for rows in metrics.values() for name in rows},
        key=lambda n: (n.startswith("baseline/"), n),
    )
    for model in models:
        cells = []
        for mode in MODES:
            row = metrics.get(mode, {}).get(model, {})
            for name in ("recall", "ndcg"):
                v = row.get(f"{name}@{k}")
                cells.append("" if v is None else f"{v:.4f}")
        table.add_row(model, *cells)
    return table


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``evaluate`` to ``app``."""

    @app.command("train")
    def train_cmd(
        events: Annotated[Path, typer.Option("--events", help="canonical events file")],
        items: Annotated[Path, typer.Option("--items", help="canonical items file")],
        out: Annotated[Path, typer.Option("--out", help="bundles directory")],
        eval_cut: Annotated[
            str | None, typer.Option("--eval-cut", help="YYYY-MM-DD: train before, test after")
        ] = None,
        model: Annotated[
            str | None, typer.Option("--model", help="default model: als | two_tower | hybrid")
        ] = None,
        config: Annotated[
            Path | None, typer.Option("--config", help="JSON or TOML config file")
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="random seed")] = 0,
        quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
        invalid_rows: InvalidRowsOption = "fail",
    ) -> None:
        """Train all models, evaluate on the temporal split, publish a bundle."""
        from recsys.bundle import read_manifest
        from training.trainer import train

        console = Console(highlight=False)
        path = train(
            events,
            items,
            out,
            eval_cut=eval_cut,
            model=model,
            config_path=config,
            seed=seed,
            show_progress=False if quiet else None,
            invalid_rows=check_invalid_rows(invalid_rows),  # type: ignore[arg-type]
        )
        manifest = read_manifest(path)
        skipped = {k: v for k, v in manifest.data.dropped_rows.items() if k.startswith("invalid_")}
        if skipped:
            console.print(
                "invalid rows set aside (see rejects.csv): "
                + ", ".join(f"{k.removeprefix('invalid_')} {v}" for k, v in skipped.items()),
                markup=False,
            )
        console.print(f"bundle {path} (current -> {manifest.bundle_id})", markup=False)
        if manifest.metrics:
            console.print(metrics_table(manifest.metrics, 20))
        total = manifest.timings_seconds.get("total", 0.0)
        console.print(f"trained in {total:.1f} s; report: {path / 'report.md'}", markup=False)

    @app.command("evaluate")
    def evaluate_cmd(
        bundle: Annotated[Path, typer.Argument(help="bundle or bundles directory")],
        events: Annotated[
            Path | None, typer.Option("--events", help="events file (default: manifest)")
        ] = None,
        items: Annotated[
            Path | None, typer.Option("--items", help="items file (default: manifest)")
        ] = None,
        k: Annotated[int, typer.Option("--k", help="list length to print")] = 20,
    ) -> None:
        """Re-run the evaluation of a bundle on its recorded cut."""
        from training.reevaluate import evaluate_bundle

        metrics = evaluate_bundle(bundle, events, items)
        Console(highlight=False).print(metrics_table(metrics, k))
