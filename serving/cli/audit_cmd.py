"""Commands of this group (registered on the main ``fairshelf`` app)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
