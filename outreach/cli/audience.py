"""`outreach audience`."""

from __future__ import annotations

import typer

app = typer.Typer(help="audience", no_args_is_help=True)
