"""账目 (ledger, finance): budgets per year and quarter (a new version with a reason), rate cards with their
versions, a campaign's statement per period with its chart (inline SVG drawn here), the same CSV and PDF as
the CLI, and adjustments with a required reason. Every union role reads; finance alone changes."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from outreach.accounts import audit, permissions
from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.errors import InputError, OutreachError
from outreach.i18n import _
from outreach.ledger import service as ledger
from outreach.ledger.documents import write_statement_csv, write_statement_pdf
from outreach.ledger.schemas import FeeLine, Statement
from outreach.money import parse_yuan
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.render import render

router = APIRouter(prefix="/ledger", include_in_schema=False)

Period = Annotated[str | None, Query(max_length=20)]
# The chart's drawing area in SVG units: one group of two bars (budget, spent) per quarter and the year.
CHART_WIDTH = 640
CHART_HEIGHT = 250
PLOT_TOP = 10
PLOT_BOTTOM = 170


@dataclass(frozen=True)
class ChartBar:
    """One bar: where it stands and how tall it is, in SVG units."""

    x: int
    y: float
    height: float
    kind: str
    amount_fen: int


@dataclass(frozen=True)
class ChartGroup:
    """The two bars of one quarter (or the year) and its label."""

    label: str
    label_x: int
    bars: tuple[ChartBar, ...]
    budget_fen: int | None
    spent_fen: int


def chart_of(st: Statement) -> tuple[ChartGroup, ...]:
    """Budget against spent per quarter and for the year, scaled to the largest amount."""
    top = max([1] + [max(q.budget_fen or 0, q.spent_fen) for q in st.quarters])
    span = PLOT_BOTTOM - PLOT_TOP
    groups = []
    step = (CHART_WIDTH - 60) // max(1, len(st.quarters))
    for i, q in enumerate(st.quarters):
        x = 60 + i * step + 10
        bars = []
        for j, (kind, fen) in enumerate((("budget", q.budget_fen), ("spent", q.spent_fen))):
            if fen is None:
                continue
            # A small amount still shows as a sliver, so that "nothing spent" and "little spent" differ.
            height = max(1.5, fen * span / top) if fen > 0 else 0.0
            bars.append(ChartBar(x + j * 34, PLOT_BOTTOM - height, height, kind, fen))
        groups.append(ChartGroup(q.label, x + 32, tuple(bars), q.budget_fen, q.spent_fen))
    return tuple(groups)


def _campaign(session: Session, campaign_id: int | None) -> Campaign | None:
    if campaign_id is None:
        all_campaigns = campaigns.list_all(session=session)
        return all_campaigns[0] if all_campaigns else None
    return campaigns.get(session=session, campaign_id=campaign_id)


def _page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    campaign_id: int | None,
    period: str | None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    campaign = _campaign(session, campaign_id)
    context: dict[str, Any] = {
        "section": "ledger",
        "principal": principal,
        "campaigns": campaigns.list_all(session=session),
        "campaign": campaign,
        "period": period or "",
        "can_manage": permissions.allowed(principal.role, "ledger.manage"),
        "errors": errors or {},
        "flash": flash,
        "form": form or {},
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "plot_bottom": PLOT_BOTTOM,
    }
    if campaign is not None:
        statement: Statement | None = None
        try:
            statement = ledger.statement(session=session, campaign_id=campaign.id, period=period or None)
        except InputError as exc:
            context["errors"] = {**context["errors"], "period": str(exc)}
            statement = ledger.statement(session=session, campaign_id=campaign.id, period=None)
            context["period"] = ""
        context.update(
            budgets=ledger.budget_lines(session=session, campaign_id=campaign.id),
            statement=statement,
            chart=chart_of(statement),
            downloads=urlencode({"campaign": campaign.id, "period": context["period"]}),
        )
    return render(request, "ledger.html", status=status, **context)


@router.get("")
def ledger_page(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("ledger.read"))],
    campaign: int | None = None,
    period: Period = None,
    done: str | None = None,
) -> Response:
    flash = {
        "budget": _("The new budget version is recorded."),
        "adjustment": _("The adjustment is booked."),
    }.get(done or "")
    return _page(request, session, principal, campaign_id=campaign, period=period, flash=flash)


def _back(campaign_id: int, period: str, done: str) -> RedirectResponse:
    query = urlencode({"campaign": campaign_id, "period": period, "done": done})
    return RedirectResponse(f"/ledger?{query}", status_code=303)


def _form_error(
    request: Request,
    session: Session,
    principal: Principal,
    campaign_id: int,
    period: str,
    field: str,
    exc: OutreachError,
    form: dict[str, str],
) -> Response:
    """The ledger page again (422) with the form as typed and the error beside FIELD; nothing is kept."""
    session.rollback()
    return _page(
        request,
        session,
        principal,
        campaign_id=campaign_id,
        period=period,
        status=422,
        errors={field: str(exc)},
        form=form,
    )


@router.post("/budgets")
def set_budget(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("ledger.manage"))],
    campaign: Annotated[int, Form()],
    budget_period: Annotated[str, Form(max_length=20)] = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    period: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    form = {"budget_period": budget_period, "amount": amount, "reason": reason}
    try:
        if not reason.strip():
            raise InputError(_("a new budget version needs a reason"))
        fen = parse_yuan(amount, what=_("budget"))
        budget = ledger.set_budget(
            session=session, campaign_id=campaign, period=budget_period, amount_fen=fen, reason=reason
        )
    except OutreachError as exc:
        return _form_error(request, session, principal, campaign, period, "budget", exc, form)
    audit.record(
        session=session,
        actor=principal.actor,
        action="budget.set",
        object_type="campaign",
        object_id=campaign,
        after={"period": budget.period, "amount_fen": fen},
        detail=reason.strip(),
    )
    return _back(campaign, period, "budget")


@router.post("/adjustments")
def add_adjustment(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("ledger.manage"))],
    campaign: Annotated[int, Form()],
    adjust_period: Annotated[str, Form(max_length=20)] = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    period: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    form = {"adjust_period": adjust_period, "adjust_amount": amount, "adjust_reason": reason}
    try:
        fen = parse_yuan(amount, what=_("adjustment"), allow_negative=True)
        entry = ledger.adjust(
            session=session,
            campaign_id=campaign,
            amount_fen=fen,
            reason=reason,
            period=adjust_period.strip() or None,
        )
    except OutreachError as exc:
        return _form_error(request, session, principal, campaign, period, "adjustment", exc, form)
    audit.record(
        session=session,
        actor=principal.actor,
        action="ledger.adjust",
        object_type="ledger_entry",
        object_id=entry.id,
        after={"campaign_id": campaign, "period": entry.period, "amount_fen": fen},
        detail=entry.reason,
    )
    return _back(campaign, period, "adjustment")


def _statement_file(session: Session, campaign: int, period: str | None, suffix: str) -> tuple[bytes, str]:
    st = ledger.statement(session=session, campaign_id=campaign, period=period or None)
    with tempfile.TemporaryDirectory(prefix="outreach-statement-") as tmp:
        path = Path(tmp) / f"statement.{suffix}"
        if suffix == "csv":
            write_statement_csv(st, path)
        else:
            write_statement_pdf(st, path)
        data = path.read_bytes()
    name = f"{st.campaign_name}-{st.period or 'all'}-statement.{suffix}"
    return data, name


def _download(
    session: Session, principal: Principal, campaign: int, period: str | None, suffix: str, media_type: str
) -> Response:
    """The statement as a file to save, its download recorded in the audit log."""
    data, name = _statement_file(session, campaign, period, suffix)
    audit.record(
        session=session,
        actor=principal.actor,
        action="statement.download",
        object_type="campaign",
        object_id=campaign,
        detail=name,
    )
    disposition = f"attachment; filename=\"statement.{suffix}\"; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})


@router.get("/statement.csv")
def statement_csv(
    session: DbSession,
    principal: Annotated[Principal, Depends(require("ledger.read"))],
    campaign: int,
    period: Period = None,
) -> Response:
    return _download(session, principal, campaign, period, "csv", "text/csv; charset=utf-8")


@router.get("/statement.pdf")
def statement_pdf(
    session: DbSession,
    principal: Annotated[Principal, Depends(require("ledger.read"))],
    campaign: int,
    period: Period = None,
) -> Response:
    return _download(session, principal, campaign, period, "pdf", "application/pdf")


# --- rate cards --------------------------------------------------------------------------------------------


def _rates_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    status: int = 200,
    error: str | None = None,
    flash: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    cards = [ledger.rate_card_out(c) for c in ledger.rate_card_versions(session=session)]
    codes: dict[str, list[Any]] = {}
    for card in cards:
        codes.setdefault(card.code, []).append(card)
    return render(
        request,
        "ledger_rates.html",
        status=status,
        section="ledger",
        principal=principal,
        codes=codes,
        can_manage=permissions.allowed(principal.role, "ledger.manage"),
        error=error,
        flash=flash,
        form=form or {},
    )


@router.get("/rates")
def rates_page(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("ledger.read"))],
    done: str | None = None,
) -> Response:
    flash = _("The new rate card version is recorded.") if done == "rate" else None
    return _rates_page(request, session, principal, flash=flash)


def _fees(text: str) -> list[FeeLine]:
    """One fee per line in the CLI's grammar (NAME=YUAN[:fixed][:waived]); InputError names the line."""
    fees = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            fees.append(ledger.parse_fee(line.strip()))
        except InputError as exc:
            raise InputError(_("fees, line {line}: {problem}", line=number, problem=str(exc))) from exc
    return fees


@router.post("/rates")
def add_rate_card(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("ledger.manage"))],
    code: Annotated[str, Form(max_length=50)] = "",
    effective_from: Annotated[str, Form(max_length=10)] = "",
    letter: Annotated[str, Form(max_length=40)] = "",
    sms_part: Annotated[str, Form(max_length=40)] = "",
    fees: Annotated[str, Form(max_length=4000)] = "",
    refund_undeliverable: Annotated[str, Form(max_length=3)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    form = {
        "code": code,
        "effective_from": effective_from,
        "letter": letter,
        "sms_part": sms_part,
        "fees": fees,
        "refund_undeliverable": refund_undeliverable,
        "note": note,
    }
    try:
        try:
            day = date.fromisoformat(effective_from.strip())
        except ValueError as exc:
            raise InputError(
                _("{value} is not a date like 2027-01-15", value=effective_from.strip()[:20])
            ) from exc
        card = ledger.set_rate_card(
            session=session,
            code=code,
            effective_from=day,
            letter_fen=parse_yuan(letter or "0", what=_("letter price")),
            sms_part_fen=parse_yuan(sms_part or "0", what=_("SMS part price")),
            fees=_fees(fees),
            refund_undeliverable=refund_undeliverable == "yes",
            note=note.strip() or None,
        )
    except OutreachError as exc:
        session.rollback()
        return _rates_page(request, session, principal, status=422, error=str(exc), form=form)
    audit.record(
        session=session,
        actor=principal.actor,
        action="rate_card.set",
        object_type="rate_card",
        object_id=card.id,
        after={"code": card.code, "version": card.version, "effective_from": card.effective_from.isoformat()},
    )
    return RedirectResponse("/ledger/rates?done=rate", status_code=303)
