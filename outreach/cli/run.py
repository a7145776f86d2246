"""`outreach run` and `outreach batch`: start, watch, resume and cancel runs; print-shop reports.

How a run is carried out (workers, local processes, a background process) is the executor's business
(outreach/runs/executor.py); these commands parse arguments, call it and say what happened.
"""

from __future__ import annotations

import json

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from outreach import db
from outreach.campaigns import service as campaigns
from outreach.cli.output import console, safe
from outreach.errors import StateError
from outreach.i18n import _
from outreach.periods import local_time_text
from outreach.runs import executor, printshop, retention, sms, supervisor
from outreach.runs import service as runs
from outreach.runs.executor import Execution, state_label
from outreach.runs.states import batch_state_label
from outreach.storage import get_storage

app = typer.Typer(help=_("Runs: one campaign for one period."), no_args_is_help=True)
batch_app = typer.Typer(
    help=_("Print batches: list them, and what the print shop reports."), no_args_is_help=True
)


def execute(run_id: int, *, processes: int = 1, wait: bool = True, quiet: bool = False) -> Execution:
    """Carries out the run through the executor, with a progress bar, and says how it was handed out."""
    with _progress(quiet) as bar:
        task = bar.add_task(_("run {run}", run=run_id), total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        done = executor.execute(run_id, processes=processes, wait=wait, progress=report)
    if not quiet:
        _say_how(done)
    return done


def _say_how(done: Execution) -> None:
    run = done.run_id
    if done.via == "celery":
        if done.queued is None:
            console.print(_("run {run}: already handed to the workers; followed it", run=run))
        else:
            console.print(
                _("run {run}: {count} batch(es) queued for the workers", run=run, count=done.queued)
            )
    elif done.via == "background":
        if done.pid is None:
            console.print(_("run {run}: a local process is carrying it out already", run=run))
        else:
            console.print(
                _(
                    "run {run}: rendering in local process {pid}; follow it with: outreach run status {run}",
                    run=run,
                    pid=done.pid,
                )
            )


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


def _end(run_id: int, state: str) -> None:
    """After executing: a stalled run says why and what to do, and the command fails."""
    if state != "stalled":
        return
    with db.session_scope() as session:
        note = runs.get(session=session, run_id=run_id).note or ""
    raise StateError(
        _(
            "run {run} stalled: {reason}. Fix the cause, then continue it with: outreach run resume {run}",
            run=run_id,
            reason=note,
        )
    )


@app.command(
    help=_("Starts a campaign's run: freezes the recipients, reserves the budget, renders and assembles.")
)
def start(
    campaign: str,
    period: str | None = typer.Option(None, help=_("e.g. 2027-Q1; default the campaign's approved period.")),
    processes: int = typer.Option(1, help=_("Local processes when no broker is set.")),
    wait: bool = typer.Option(
        True, help=_("Wait until the run is done (without a broker, --no-wait renders in the background).")
    ),
) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        c = campaigns.get_by_name(session=session, name=campaign)
        if period is None:
            if c.approved_period is None:
                raise StateError(
                    _(
                        "campaign {name} has no approved period; approve one first: "
                        "outreach campaign approve {name} --period 2027-Q1",
                        name=c.name,
                    )
                )
            period = c.approved_period
        run, created = runs.start_by_hand(session=session, campaign=c, period=period)
        run_id, state, pieces, name, at = run.id, run.state, run.piece_count, c.name, run.period
    if not created:
        console.print(
            _(
                "run {run} of {campaign} for {period} already exists: {state}",
                run=run_id,
                campaign=safe(name),
                period=at,
                state=state_label(state),
            )
        )
        if state not in executor.ACTIVE:
            _print_status(run_id)
            _end(run_id, state)
            return
    else:
        console.print(
            _("run {run}: {pieces} pieces frozen and budget reserved", run=run_id, pieces=format(pieces, ","))
        )
    done = execute(run_id, processes=processes, wait=wait)
    _print_status(run_id)
    _end(run_id, done.state)


@app.command(help=_("Continues an interrupted or stalled run, doing only the missing work."))
def resume(
    run_id: int,
    processes: int = typer.Option(1, help=_("Local processes when no broker is set.")),
    wait: bool = typer.Option(True, help=_("Wait until the run is done.")),
) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        state = runs.get(session=session, run_id=run_id).state
    if state in ("done", "cancelled", "waiting"):
        console.print(_("run {run} is {state}; nothing to do", run=run_id, state=state_label(state)))
        return
    with _progress(False) as bar:
        task = bar.add_task(_("run {run}", run=run_id), total=None)
        done = executor.resume(
            run_id,
            processes=processes,
            wait=wait,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )
    _say_how(done)
    _print_status(run_id)
    _end(run_id, done.state)


@app.command(help=_("Cancels an unfinished run and releases its unused reservation."))
def cancel(run_id: int) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        runs.cancel(session=session, run_id=run_id)
    console.print(_("run {run} cancelled", run=run_id))


@app.command(
    help=_("Shows pieces done of total, batches and errors; re-dispatches a run that stopped moving.")
)
def status(run_id: int, as_json: bool = typer.Option(False, "--json", help=_("Print JSON."))) -> None:
    db.ensure_schema()
    found = supervisor.check_run(run_id)
    if found == supervisor.REDISPATCHED and not as_json:
        console.print(_("run {run} had stopped moving; its remaining work was handed out again", run=run_id))
    _print_status(run_id, as_json=as_json)


_LABELS = {
    "campaign": _("campaign name"),
    "period": _("run period"),
    "state": _("run state"),
    "pieces": _("pieces in all"),
    "rendered": _("pieces rendered"),
    "failed": _("pieces failed"),
    "pending": _("pieces pending"),
    "batches": _("batches in all"),
    "batches_done": _("batches done"),
    "note": _("run note"),
}


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
        live = sms.status(session=session, run_id=run_id) if st.submitted or st.delivered else None
        if live is not None:
            # Live SMS: what the gateway took, what its receipts said, and the failures by error code.
            info["submitted"] = live.taken
            info["delivered"] = live.delivered
            info["awaiting_receipts"] = live.awaiting_receipts
            info["failures_by_code"] = dict(live.failures)
            info["paused_until"] = live.paused_until.isoformat() if live.paused_until else None
        elapsed = None
        if st.run.started_at and st.run.state != "waiting":
            # While rendering, the rate so far; once finished, over the whole run.
            elapsed = ((st.run.finished_at or db.utcnow()) - st.run.started_at).total_seconds()
    if as_json:
        console.print_json(json.dumps(info, ensure_ascii=False))
        return
    table = Table(show_header=False, title=_("run {run}", run=run_id))
    for key, label in _LABELS.items():
        value = info[key]
        if key == "state":
            shown = state_label(str(value))
        else:
            shown = f"{value:,}" if isinstance(value, int) else str(value or "")
        table.add_row(label, safe(shown))
    if elapsed:
        table.add_row(
            _("rate so far"),
            _(
                "{rate} pieces/s over {seconds} s",
                rate=format(st.done / elapsed, ",.0f"),
                seconds=format(elapsed, ",.1f"),
            ),
        )
    if live is not None:
        table.add_row(_("SMS submitted to the gateway"), f"{live.taken:,}")
        table.add_row(_("SMS delivered (receipt)"), f"{live.delivered:,}")
        table.add_row(_("SMS awaiting their receipt"), f"{live.awaiting_receipts:,}")
        if live.paused_until is not None:
            until = local_time_text(live.paused_until)
            table.add_row(_("paused until the sending window opens"), safe(until))
    console.print(table)
    if live is not None and live.failures:
        codes = Table(_("error code"), _("failed SMS"), title=_("failures by error code"))
        for code, count in live.failures:
            codes.add_row(safe(code), f"{count:,}")
        console.print(codes)
    for error in st.errors:
        console.print(_("[red]failed piece[/] {error}", error=safe(error)))
    if st.run.state == "stalled":
        console.print(_("fix the cause, then continue it with: outreach run resume {run}", run=run_id))


@batch_app.command(
    "list", help=_("Lists a run's batches: pieces, pages, print-shop state and where the files are.")
)
def list_batches(run_id: int) -> None:
    storage = get_storage()
    with db.session_scope(db.ensure_schema()) as session:
        table = Table(_("batch id"), _("pieces in batch"), _("pages in batch"), _("batch state"))
        table.add_column(_("batch folder"), overflow="fold")
        for b in runs.batches(session=session, run_id=run_id):
            keys = [str(m["key"]) for m in b.files.values()]
            folder = storage.locate(keys[0].rsplit("/", 1)[0]) + "/" if keys else ""
            table.add_row(
                str(b.id),
                f"{b.pieces:,}",
                f"{b.pages:,}",
                safe(b.state),
                _("(purged)") if b.purged_at else safe(folder),
            )
        console.print(table)


@batch_app.command(help=_("Records what the print shop reports for a batch."))
def report(batch_id: int, state: str = typer.Argument(..., help=_("downloaded, printed or mailed"))) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        batch = printshop.report(session=session, batch_id=batch_id, state=state)
        console.print(_("batch {batch}: {state}", batch=batch.id, state=safe(batch_state_label(batch.state))))


@batch_app.command(
    help=_("Records returned letters by piece number: suppresses the address, refunds where due.")
)
def returned(numbers: list[str], reason: str = typer.Option("undeliverable")) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        count = printshop.record_returns(session=session, numbers=numbers, reason=reason)
    console.print(_("{count} returned piece(s) recorded", count=count))


@batch_app.command(
    help=_("Deletes batch files past their retention period (the batch totals and checksums stay).")
)
def purge() -> None:
    with db.session_scope(db.ensure_schema()) as session:
        count = retention.purge(session=session, storage=get_storage(), now=db.utcnow())
    console.print(_("{count} batch(es) purged", count=count))
