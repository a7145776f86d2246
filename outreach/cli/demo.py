"""`outreach demo`: the main job end to end on a generated county registry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console

from outreach import db
from outreach.settings import get_settings

console = Console()


def register(app: typer.Typer) -> None:
    """Adds the `demo` command to the top-level app."""
    app.command()(demo)


def demo(
    out: Path = typer.Option(Path("outreach-demo"), help="Folder for the registry, batches and statement."),
    workers: int = typer.Option(1, help="Local render processes (without a broker; with one, Celery's)."),
    size: int = typer.Option(12_000, help="Workers in the generated registry (about half are women)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary only."),
) -> None:
    """Generates a county registry, imports it, runs the 俏佳人 campaign for 2027-Q1, prints the statement."""
    from outreach.cli.run import execute
    from outreach.demo import run_demo
    from outreach.ledger.statement import rich_statement

    settings = get_settings()
    if settings.database_url is None:
        # The embedded default: a fresh SQLite database and batch folder inside the demo folder.
        out.mkdir(parents=True, exist_ok=True)
        for leftover in out.glob("outreach.db*"):
            leftover.unlink()
        os.environ["OUTREACH_DATA_DIR"] = str(out.resolve())
        os.environ.setdefault("OUTREACH_BATCH_DIR", str((out / "batches").resolve()))
        get_settings.cache_clear()
        db.dispose_engines()
    quiet = as_json
    result = run_demo(
        out=out,
        size=size,
        processes=workers,
        step=None if quiet else (lambda msg: console.print(f"[cyan]•[/] {msg}")),
        execute=lambda run_id: execute(run_id, processes=workers, quiet=quiet),
    )
    if as_json:
        print(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
        return
    imp = result.imported
    console.print(
        f"registry: {imp.inserted:,} inserted, {imp.updated:,} updated, {imp.unchanged:,} unchanged, "
        f"{imp.rejected:,} rejected (see {out / 'rejects.csv'})"
    )
    console.print(
        f"run {result.run}: {result.pieces:,} pieces in {len(result.batches)} batches"
        + (f", {result.failed} failed" if result.failed else "")
    )
    for b in result.batches[:3]:
        console.print(f"  {b['envelopes']}\n  {b['letters']}")
    if len(result.batches) > 3:
        console.print(f"  ... and {len(result.batches) - 3} more batches")
    assert result.statement is not None
    console.print(rich_statement(result.statement))
    console.print(f"statement: {result.statement_csv}, {result.statement_pdf}")
