"""The ``fairshelf`` console script.

Each command group lives in its own module and registers itself here; heavy libraries
(torch, faiss, implicit) are imported inside the commands so that ``fairshelf --help`` stays fast.
Domain errors end the process with a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from fairshelf.cli import (
    audit_cmd,
    bundles_cmd,
    data_cmd,
    experiments_cmd,
    pricing_cmd,
    promotions_cmd,
    retrain_cmd,
    serve_cmd,
    train_cmd,
)
from fairshelf.errors import FairshelfError

app = typer.Typer(
    name="fairshelf",
    help="Recommendations and fair dynamic pricing for online stores.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (
    data_cmd,
    train_cmd,
    retrain_cmd,
    bundles_cmd,
    serve_cmd,
    pricing_cmd,
    audit_cmd,
    experiments_cmd,
    promotions_cmd,
):
    module.register(app)


def main() -> None:
    """Run the CLI, turning domain and I/O errors into a clear message and exit code 2."""
    # soft_wrap: a message stays one line however narrow the terminal (scripts grep it).
    err = Console(stderr=True, soft_wrap=True)
    try:
        app()
    except FairshelfError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
