"""`outreach registry`: import registry files, write the blank template, generate sample registries."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from audiences.importer import ImportSummary, import_registry
from audiences.reader import estimate_rows
from audiences.sample import ENCODINGS, write_sample
from audiences.template import write_template
from outreach import db

app = typer.Typer(
    help="The registry of work units and workers: import, template, sample.", no_args_is_help=True
)
console = Console()
# Below this many rows an import is over before a progress bar helps.
PROGRESS_ROWS = 20000


@app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A CSV or XLSX registry file."),
    strict: bool = typer.Option(False, "--strict", help="Import nothing if any row is rejected."),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Write rejected rows (line, column, reason) here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Imports a registry file (CSV in UTF-8/GBK/GB18030/Big5, or XLSX): inserts new, updates changed."""
    engine = db.ensure_schema()
    total = estimate_rows(file)
    with db.session_scope(engine) as session:
        if as_json or not total or total < PROGRESS_ROWS:
            summary = import_registry(session=session, path=file, strict=strict, rejects=rejects)
        else:
            with Progress(
                TextColumn("importing {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task(file.name, total=total)
                summary = import_registry(
                    session=session,
                    path=file,
                    strict=strict,
                    rejects=rejects,
                    progress=lambda rows: bar.update(task, completed=rows),
                )
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), ensure_ascii=False, default=str, indent=2))
    else:
        _print_summary(summary, rejects)
    if strict and not summary.applied:
        raise typer.Exit(1)


def _print_summary(summary: ImportSummary, rejects: Path | None) -> None:
    encoding = f", {summary.encoding}" if summary.encoding else ""
    table = Table(title=f"{summary.filename} ({summary.format}{encoding}, {summary.rows} rows)")
    table.add_column("")
    table.add_column("workers", justify="right")
    table.add_column("units", justify="right")
    workers = summary.kind == "workers"
    table.add_row("inserted", str(summary.inserted) if workers else "-", str(summary.units_inserted))
    table.add_row("updated", str(summary.updated) if workers else "-", str(summary.units_updated))
    table.add_row("unchanged", str(summary.unchanged) if workers else "-", str(summary.units_unchanged))
    table.add_row("rejected rows", str(summary.rejected), "")
    console.print(table)
    if summary.unknown_columns:
        console.print(f"[yellow]columns not imported (unknown):[/] {', '.join(summary.unknown_columns)}")
    for rejection in summary.rejections[:10]:
        console.print(f"  line {rejection.line}, {rejection.column}: {rejection.reason}", highlight=False)
    if summary.rejected > 10:
        console.print(f"  ... and {summary.rejected - 10} more")
    if summary.rejected and rejects is not None:
        console.print(f"rejected rows written to {rejects}")
    if not summary.applied:
        console.print("[bold red]--strict: nothing was imported because rows were rejected[/]")


@app.command()
def template(out: Path = typer.Argument(..., help="Where to write the blank .xlsx sheet.")) -> None:
    """Writes a blank registry sheet with the Chinese headers, drop-down lists and a sheet of instructions."""
    write_template(out)
    console.print(f"template written to {out}")


@app.command()
def sample(
    workers: int = typer.Option(..., "--workers", min=0, help="How many workers."),
    seed: int = typer.Option(1, "--seed", help="The same seed writes the same file."),
    out: Path = typer.Option(..., "--out", help="A .csv or .xlsx file to write."),
    malformed: int = typer.Option(0, "--malformed", min=0, help="Add this many deliberately bad rows."),
    encoding: str = typer.Option("utf-8", "--encoding", help=f"CSV encoding: {', '.join(ENCODINGS)}."),
) -> None:
    """Writes a synthetic registry of a county like 尤溪县 (any size; streamed to disk)."""
    stats = write_sample(out, workers=workers, seed=seed, malformed=malformed, encoding=encoding)
    console.print(
        f"wrote {stats.workers} workers of {stats.units} units and {stats.malformed} malformed rows to {out}"
    )
