"""运行 (runs): the list of runs, starting an approved period's run, live progress (an htmx fragment polled
every two seconds, a plain page without JavaScript), failed pieces and their retry, the batches with the print
shop's acknowledgements, and cancelling with a confirmation step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from outreach.accounts import audit, permissions
from outreach.campaigns import schedule
from outreach.campaigns import service as campaigns
from outreach.db import utcnow
from outreach.errors import InputError
from outreach.i18n import _
from outreach.runs import executor, printshop
from outreach.runs import service as runs
from outreach.runs.models import Batch, piece_number
from outreach.runs.states import run_state_label
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.render import render

router = APIRouter(prefix="/runs", include_in_schema=False)

# Failed pieces listed on a run's page (the first ones, by piece number).
FAILED_SHOWN = 50
ACTIVE = ("rendering", "assembling")


@dataclass(frozen=True)
class Progress:
    """What the live part of a run's page shows."""

    run_id: int
    campaign: str
    period: str
    state: str
    state_text: str
    note: str | None
    advice: str | None
    total: int
    done: int
    failed: int
    percent: int
    rate: float | None
    batches_total: int
    batches_done: int
    active: bool
    started_at: datetime | None
    finished_at: datetime | None


def _advice(state: str) -> str | None:
    """What a person should do about a run in this state."""
    if state == "stalled":
        return _("Fix the cause named above, then press “Continue the run”: only the missing work is done.")
    if state == "waiting":
        return _("The run starts once the period's content is approved.")
    return None


def progress_of(session: Session, run_id: int) -> Progress:
    """A run's progress for the page: pieces, rate, batches, state with its reason and what to do."""
    st = runs.status(session=session, run_id=run_id)
    run = st.run
    rate = None
    if run.started_at is not None and st.done:
        seconds = ((run.finished_at or utcnow()) - run.started_at).total_seconds()
        rate = st.done / seconds if seconds > 0 else None
    return Progress(
        run_id=run.id,
        campaign=st.campaign,
        period=run.period,
        state=run.state,
        state_text=run_state_label(run.state),
        note=run.note,
        advice=_advice(run.state),
        total=st.total,
        done=st.done,
        failed=st.failed,
        percent=int(st.done * 100 / st.total) if st.total else 0,
        rate=rate,
        batches_total=st.batches_total,
        batches_done=st.batches_done,
        active=run.state in ACTIVE,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


@dataclass(frozen=True)
class BatchRow:
    """A batch with the print shop's acknowledgements and the pieces the post returned."""

    batch: Batch
    returned: int

    @property
    def first_number(self) -> str:
        """The printed number of the batch's first piece."""
        return piece_number(self.batch.run_id, self.batch.first_seq)

    @property
    def last_number(self) -> str:
        """The printed number of the batch's last piece."""
        return piece_number(self.batch.run_id, self.batch.last_seq)


@router.get("")
def run_list(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("runs.read"))],
    error: str | None = None,
) -> Response:
    now = utcnow()
    period, starts_at = schedule.next_start(now)
    return render(
        request,
        "runs.html",
        section="runs",
        principal=principal,
        runs=runs.recent(session=session),
        startable=runs.startable(session=session),
        upcoming=schedule.upcoming(session=session, now=now),
        next_period=period,
        next_start=starts_at,
        can_start=permissions.allowed(principal.role, "runs.start"),
        state_label=run_state_label,
        error=error,
    )


@router.post("/start")
def start_run(
    session: DbSession,
    principal: Annotated[Principal, Depends(require("runs.start"))],
    choice: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    campaign_id, _sep, period = choice.partition("|")
    if not campaign_id.isdigit() or not period:
        raise InputError(_("choose a campaign and its approved period to start"))
    campaign = campaigns.get(session=session, campaign_id=int(campaign_id))
    run, started = runs.start_by_hand(session=session, campaign=campaign, period=period)
    audit.record(
        session=session,
        actor=principal.actor,
        action="run.start" if started else "run.start.existing",
        object_type="run",
        object_id=run.id,
        after={"state": run.state, "pieces": run.piece_count, "period": run.period},
    )
    run_id = run.id
    # The executor opens its own sessions: what this request stored must be committed first. It renders in a
    # worker or a detached local process, never in the web process.
    session.commit()
    executor.execute(run_id, wait=False)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


def _run_page(
    request: Request, session: Session, principal: Principal, run_id: int, *, flash: str | None = None
) -> Response:
    progress = progress_of(session, run_id)
    st = runs.status(session=session, run_id=run_id, max_errors=FAILED_SHOWN)
    returned = printshop.returned_by_batch(session=session, run_id=run_id)
    rows = [BatchRow(b, returned.get(b.seq, 0)) for b in runs.batches(session=session, run_id=run_id)]
    return render(
        request,
        "run.html",
        section="runs",
        principal=principal,
        progress=progress,
        failed=[e.partition(": ") for e in st.errors],
        batches=rows,
        can_start=permissions.allowed(principal.role, "runs.start"),
        can_cancel=permissions.allowed(principal.role, "runs.cancel"),
        flash=flash,
    )


@router.get("/{run_id}")
def run_page(
    run_id: int,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("runs.read"))],
    done: str | None = None,
) -> Response:
    flash = {
        "resumed": _("The run continues with the missing work."),
        "retried": _("The failed pieces are rendered again."),
        "cancelled": _("The run is cancelled; its unused reservation is released."),
    }.get(done or "")
    return _run_page(request, session, principal, run_id, flash=flash)


@router.get("/{run_id}/progress")
def run_progress(
    run_id: int,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("runs.read"))],
) -> Response:
    return render(request, "run_progress.html", progress=progress_of(session, run_id))


@router.post("/{run_id}/resume")
def resume_run(
    run_id: int,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("runs.start"))],
    failed: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    runs.get(session=session, run_id=run_id)
    retried = runs.retry_failed(session=session, run_id=run_id) if failed == "yes" else 0
    audit.record(
        session=session,
        actor=principal.actor,
        action="run.resume",
        object_type="run",
        object_id=run_id,
        detail=f"failed pieces retried: {retried}" if failed == "yes" else None,
    )
    session.commit()
    executor.resume(run_id, wait=False)
    done = "retried" if failed == "yes" else "resumed"
    return RedirectResponse(f"/runs/{run_id}?done={done}", status_code=303)


@router.get("/{run_id}/cancel")
def confirm_cancel(
    run_id: int,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("runs.cancel"))],
) -> Response:
    return render(
        request,
        "run_cancel.html",
        section="runs",
        principal=principal,
        progress=progress_of(session, run_id),
    )


@router.post("/{run_id}/cancel")
def cancel_run(
    run_id: int,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("runs.cancel"))],
    confirm: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    if confirm != "yes":
        return RedirectResponse(f"/runs/{run_id}/cancel", status_code=303)
    before = runs.get(session=session, run_id=run_id).state
    run = runs.cancel(session=session, run_id=run_id)
    audit.record(
        session=session,
        actor=principal.actor,
        action="run.cancel",
        object_type="run",
        object_id=run_id,
        before={"state": before},
        after={"state": run.state},
    )
    return RedirectResponse(f"/runs/{run_id}?done=cancelled", status_code=303)
