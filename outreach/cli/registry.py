"""`outreach registry`: import registry files, write the blank template, generate sample registries."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from audiences.importer import ImportSummary, import_registry
from audiences.reader import estimate_rows
from audiences.sample import ENCODINGS, write_sample
from audiences.template import write_template
from outreach import db
from outreach.cli.output import console, safe
from outreach.cli.paths import output_file
from outreach.i18n import _

app = typer.Typer(
    help=_("The registry of work units and workers: import, template, sample."), no_args_is_help=True
)
# Below this many rows an import is over before a progress bar helps.
PROGRESS_ROWS = 20000
# The console lists this many problems; the rejects file has them all.
REJECTIONS_SHOWN = 10


@app.command(
    "import",
    help=_(
        "Imports a registry file (CSV in UTF-8/UTF-16/GBK/GB18030/Big5, or XLSX, each sheet with the "
        "registry's headers): inserts new, updates changed, names every problem of each rejected row."
    ),
)
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help=_("A CSV or XLSX registry file.")),
    strict: bool = typer.Option(False, "--strict", help=_("Import nothing if any row is rejected.")),
    rejects: Path | None = typer.Option(
        None, "--rejects", help=_("Write rejected rows (line, column, reason) here."), callback=output_file
    ),
    as_json: bool = typer.Option(False, "--json", help=_("Print the summary as JSON.")),
) -> None:
    engine = db.ensure_schema()
    total = estimate_rows(file)
    with db.session_scope(engine) as session:
        if as_json or not total or total < PROGRESS_ROWS:
            summary = import_registry(session=session, path=file, strict=strict, rejects=rejects)
        else:
            with Progress(
                TextColumn(_("importing {file}", file="{task.description}")),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task(safe(file.name), total=total)
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
    how = f"{summary.format}, {summary.encoding}" if summary.encoding else summary.format
    table = Table(
        title=safe(_("{file} ({how}, {rows} rows)", file=summary.filename, how=how, rows=summary.rows))
    )
    table.add_column("")
    table.add_column(_("workers"), justify="right")
    table.add_column(_("units"), justify="right")
    workers = summary.kind == "workers"
    table.add_row(_("inserted"), str(summary.inserted) if workers else "-", str(summary.units_inserted))
    table.add_row(_("updated"), str(summary.updated) if workers else "-", str(summary.units_updated))
    table.add_row(_("unchanged"), str(summary.unchanged) if workers else "-", str(summary.units_unchanged))
    table.add_row(_("rejected rows"), str(summary.rejected), "")
    console.print(table)
    if len(summary.sheets) > 1:
        console.print(safe(_("sheets imported: {sheets}", sheets=", ".join(summary.sheets))))
    if summary.skipped_sheets:
        console.print(
            "[yellow]"
            + safe(
                _(
                    "sheets not imported (no registry headers): {sheets}",
                    sheets=", ".join(summary.skipped_sheets),
                )
            )
            + "[/]"
        )
    if summary.unknown_columns:
        console.print(
            "[yellow]"
            + safe(_("columns not imported (unknown): {columns}", columns=", ".join(summary.unknown_columns)))
            + "[/]"
        )
    for rejection in summary.rejections[:REJECTIONS_SHOWN]:
        console.print("  " + safe(rejection.describe()))
    hidden = len(summary.rejections) - REJECTIONS_SHOWN
    if hidden > 0 or len(summary.rejections) < summary.rejected:
        console.print(
            "  " + safe(_("... and more problems in {count} rejected rows", count=summary.rejected))
        )
    if summary.rejected and rejects is not None:
        console.print(safe(_("rejected rows written to {path}", path=rejects)))
    if not summary.applied:
        console.print(
            "[bold red]" + safe(_("--strict: nothing was imported because rows were rejected")) + "[/]"
        )


@app.command(
    help=_(
        "Writes a blank registry sheet with the Chinese headers, drop-down lists and a sheet of instructions."
    )
)
def template(
    out: Path = typer.Argument(..., help=_("Where to write the blank .xlsx sheet."), callback=output_file),
) -> None:
    write_template(out)
    console.print(safe(_("template written to {path}", path=out)))


@app.command(help=_("Writes a synthetic registry of a county like 尤溪县 (any size; streamed to disk)."))
def sample(
    size: int = typer.Option(..., "--size", min=0, help=_("How many workers the registry lists.")),
    seed: int = typer.Option(1, "--seed", help=_("The same seed writes the same file.")),
    out: Path = typer.Option(..., "--out", help=_("A .csv or .xlsx file to write."), callback=output_file),
    malformed: int = typer.Option(0, "--malformed", min=0, help=_("Add this many deliberately bad rows.")),
    encoding: str = typer.Option(
        "utf-8", "--encoding", help=_("CSV encoding: {encodings}.", encodings=", ".join(ENCODINGS))
    ),
) -> None:
    stats = write_sample(out, workers=size, seed=seed, malformed=malformed, encoding=encoding)
    console.print(
        safe(
            _(
                "wrote {workers} workers of {units} units and {malformed} malformed rows to {path}",
                workers=stats.workers,
                units=stats.units,
                malformed=stats.malformed,
                path=out,
            )
        )
    )
