"""`outreach db`: the database schema."""

from __future__ import annotations

import typer
from rich.console import Console

from outreach import db

app = typer.Typer(help="The database schema.", no_args_is_help=True)
console = Console()


@app.command()
def upgrade() -> None:
    """Creates or upgrades the schema to this version of Outreach."""
    engine = db.get_engine()
    db.upgrade(engine)
    console.print(f"schema is current on {engine.url.render_as_string(hide_password=True)}")


@app.command()
def status() -> None:
    """Says whether the schema is current."""
    engine = db.get_engine()
    have, want = db.applied_heads(engine), db.current_heads()
    state = "current" if have == want else "needs `outreach db upgrade`"
    console.print(f"{engine.url.render_as_string(hide_password=True)}: {state} (have {sorted(have)})")
