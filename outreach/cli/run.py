"""`outreach run` and `outreach batch`: start, watch, resume and cancel runs; print-shop reports."""

from __future__ import annotations

import json
import time

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from outreach import db
from outreach.campaigns import service as campaigns
from outreach.periods import local_date, quarter_of
from outreach.runs import printshop, retention
from outreach.runs import service as runs
from outreach.settings import get_settings
from outreach.storage import get_storage

app = typer.Typer(help="Runs: one campaign for one period.", no_args_is_help=True)
batch_app = typer.Typer(
    help="Print batches: list them, and what the print shop reports.", no_args_is_help=True
)
console = Console()


def execute(run_id: int, *, processes: int = 1, wait: bool = True, quiet: bool = False) -> None:
    """Does a run's remaining work: in-process (embedded default) or on Celery workers (broker set)."""
    from workers import tasks
    from workers.local import run_locally

    if get_settings().broker_url is None:
        with _progress(quiet) as bar:
            task = bar.add_task(f"run {run_id}: batches", total=None)

            def report(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            run_locally(run_id, processes=processes, progress=report)
        return
    queued = tasks.dispatch(run_id)
    if not quiet:
        console.print(f"run {run_id}: {queued} batch(es) queued for the workers")
    if wait:
        wait_for(run_id, quiet=quiet)


def wait_for(run_id: int, *, quiet: bool = False, poll: float = 0.5, timeout: float | None = None) -> str:
    """Waits until the run is done or cancelled, showing pieces done of total; returns its state."""
    started = time.monotonic()
    with _progress(quiet) as bar:
        task = bar.add_task(f"run {run_id}: pieces", total=None)
        while True:
            with db.session_scope() as session:
                st = runs.status(session=session, run_id=run_id)
                state = st.run.state
            bar.update(task, completed=st.done, total=st.total)
            if state in ("done", "cancelled"):
                return state
            if timeout is not None and time.monotonic() - started > timeout:
                return state
            time.sleep(poll)


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=False,
    )


@app.command()
def start(
    campaign: str,
    period: str | None = typer.Option(None, help="e.g. 2027-Q1; default the current quarter."),
    processes: int = typer.Option(1, help="Local processes when no broker is set."),
    wait: bool = typer.Option(True, help="Wait for the workers to finish (with a broker)."),
) -> None:
    """Starts a campaign's run: freezes the recipients, reserves the budget, renders and assembles."""
    with db.session_scope(db.ensure_schema()) as session:
        c = campaigns.get_by_name(session=session, name=campaign)
        run = runs.start(session=session, campaign=c, period=period or str(quarter_of(local_date())))
        run_id, state, note, pieces = run.id, run.state, run.note, run.piece_count
    if state == "waiting":
        console.print(f"[yellow]run {run_id} waits:[/] {note}")
        raise typer.Exit(2)
    console.print(f"run {run_id}: {pieces:,} pieces frozen and budget reserved")
    execute(run_id, processes=processes, wait=wait)
    _print_status(run_id)


@app.command()
def resume(
    run_id: int, processes: int = typer.Option(1, help="Local processes when no broker is set.")
) -> None:
    """Finishes an interrupted run, doing only the missing work; a finished run is left as it is."""
    with db.session_scope(db.ensure_schema()) as session:
        run = runs.get(session=session, run_id=run_id)
        state = run.state
    if state in ("done", "cancelled", "waiting"):
        console.print(f"run {run_id} is {state}; nothing to do")
        return
    execute(run_id, processes=processes)
    _print_status(run_id)


@app.command()
def cancel(run_id: int) -> None:
    """Cancels an unfinished run and releases its unused reservation."""
    with db.session_scope(db.ensure_schema()) as session:
        runs.cancel(session=session, run_id=run_id)
    console.print(f"run {run_id} cancelled")


@app.command()
def status(run_id: int, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Shows pieces done of total, batches and errors."""
    db.ensure_schema()
    _print_status(run_id, as_json=as_json)


def _print_status(run_id: int, *, as_json: bool = False) -> None:
    with db.session_scope() as session:
        st = runs.status(session=session, run_id=run_id)
        info = {
            "run": st.run.id,
            "campaign": st.campaign,
            "period": st.run.period,
            "state": st.run.state,
            "pieces": st.total,
            "rendered": st.rendered,
            "failed": st.failed,
            "pending": st.pending,
            "batches": st.batches_total,
            "batches_done": st.batches_done,
            "note": st.run.note,
            "errors": st.errors,
        }
        elapsed = None
        if st.run.started_at and st.run.state != "waiting":
            # While rendering, the rate so far; once finished, over the whole run.
            elapsed = ((st.run.finished_at or db.utcnow()) - st.run.started_at).total_seconds()
    if as_json:
        console.print_json(json.dumps(info, ensure_ascii=False))
        return
    table = Table(show_header=False, title=f"run {run_id}")
    for key in (
        "campaign",
        "period",
        "state",
        "pieces",
        "rendered",
        "failed",
        "pending",
        "batches",
        "batches_done",
        "note",
    ):
        value = info[key]
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value or ""))
    if elapsed:
        table.add_row("rate", f"{st.done / elapsed:,.0f} pieces/s over {elapsed:,.1f} s")
    console.print(table)
    for error in st.errors:
        console.print(f"[red]failed[/] {error}")


@batch_app.command("list")
def list_batches(run_id: int) -> None:
    """Lists a run's batches: pieces, pages, print-shop state and where the files are."""
    storage = get_storage()
    with db.session_scope(db.ensure_schema()) as session:
        table = Table("batch", "pieces", "pages", "state")
        table.add_column("files", overflow="fold")
        for b in runs.batches(session=session, run_id=run_id):
            keys = [str(m["key"]) for m in b.files.values()]
            folder = storage.locate(keys[0].rsplit("/", 1)[0]) + "/" if keys else ""
            table.add_row(
                str(b.id), f"{b.pieces:,}", f"{b.pages:,}", b.state, "(purged)" if b.purged_at else folder
            )
        console.print(table)


@batch_app.command()
def report(batch_id: int, state: str = typer.Argument(..., help="downloaded, printed or mailed")) -> None:
    """Records what the print shop reports for a batch."""
    with db.session_scope(db.ensure_schema()) as session:
        batch = printshop.report(session=session, batch_id=batch_id, state=state)
        console.print(f"batch {batch.id}: {batch.state}")


@batch_app.command()
def returned(numbers: list[str], reason: str = typer.Option("undeliverable")) -> None:
    """Records returned letters by piece number: suppresses the address for mail, refunds where due."""
    with db.session_scope(db.ensure_schema()) as session:
        count = printshop.record_returns(session=session, numbers=numbers, reason=reason)
    console.print(f"{count} returned piece(s) recorded")


@batch_app.command()
def purge() -> None:
    """Deletes batch files past their retention period (the batch totals and checksums stay)."""
    with db.session_scope(db.ensure_schema()) as session:
        count = retention.purge(session=session, storage=get_storage(), now=db.utcnow())
    console.print(f"{count} batch(es) purged")
