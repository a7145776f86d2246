"""`outreach run`."""

from __future__ import annotations

import typer

app = typer.Typer(help="run", no_args_is_help=True)
