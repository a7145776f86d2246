"""`outreach proof`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the `proof` command to the top-level app."""
