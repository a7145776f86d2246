"""受众 (audiences): an expression box with field completion, the live count and breakdowns (htmx, with a
plain form as fallback), a sample of recipients, the guided builder, and saved audiences (save, rename)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from audiences import service
from audiences.fields import FIELDS
from audiences.schemas import AudienceOverview, BreakdownRow, RecipientSample
from outreach.accounts import audit, permissions
from outreach.errors import InputError, QueryError
from outreach.i18n import N_, _, translate
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.render import render

router = APIRouter(prefix="/audiences", include_in_schema=False)

MAX_EXPRESSION = 4000
SAMPLE_SIZE = 10
# Bars of the breakdown chart: the largest groups, the rest summed up.
CHART_BARS = 12
OPERATOR_LABELS = {
    "=": N_("is"),
    "!=": N_("is not"),
    "contains": N_("contains"),
    ">=": N_("at least"),
    "<=": N_("at most"),
    ">": N_("more than"),
    "<": N_("less than"),
    "yes": N_("yes"),
    "no": N_("no"),
    "is not null": N_("is filled in"),
    "is null": N_("is empty"),
}
REACH_LABELS = {"letter": N_("reachable by letter"), "sms": N_("reachable by SMS")}

Expression = Annotated[str, Query(max_length=MAX_EXPRESSION)]


@dataclass(frozen=True)
class Bar:
    """One bar of a server-drawn chart: its label, count and length in SVG units (of 100)."""

    label: str
    count: int
    length: float
    y: int


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart as inline SVG draws it."""

    title: str
    bars: tuple[Bar, ...]
    height: int


@dataclass(frozen=True)
class Live:
    """What the live part shows: the overview and a sample, or the error with its caret."""

    expression: str
    overview: AudienceOverview | None = None
    sample: tuple[RecipientSample, ...] = ()
    charts: tuple[Chart, ...] = ()
    error: QueryError | None = None
    problem: str | None = None


def gender_word(code: str) -> str:
    """女 or 男 for a stored gender code."""
    return service.GENDER_WORDS.get(code, code)


def _label(value: Any) -> str:
    return _("(not filled in)") if value is None or value == "" else str(value)


def _chart(title: str, rows: tuple[BreakdownRow, ...]) -> Chart:
    shown = list(rows[:CHART_BARS])
    rest = sum(r.count for r in rows[CHART_BARS:])
    items = [(_label(r.value), r.count) for r in shown]
    if rest:
        items.append((_("others"), rest))
    top = max((n for _label_text, n in items), default=0)
    bars = tuple(
        Bar(label=text, count=n, length=(100.0 * n / top if top else 0.0), y=index * 26)
        for index, (text, n) in enumerate(items)
    )
    return Chart(title=title, bars=bars, height=max(len(bars), 1) * 26)


def _live(session: Session, principal: Principal, expression: str) -> Live:
    expression = expression.strip()
    if not expression:
        return Live(expression="")
    try:
        found = service.overview(session=session, expression=expression)
        sample = service.sample_recipients(
            session=session,
            expression=expression,
            size=SAMPLE_SIZE,
            mask_names=not permissions.allowed(principal.role, "personal.unmasked"),
        )
    except QueryError as exc:
        return Live(expression=expression, error=exc)
    except InputError as exc:
        return Live(expression=expression, problem=str(exc))
    reach_rows = tuple(
        BreakdownRow(value=translate(REACH_LABELS[channel]), count=n) for channel, n in found.reach.items()
    )
    charts = (
        _chart(_("By township"), found.by_township),
        _chart(_("By kind of work unit"), found.by_kind),
        _chart(_("By channel"), reach_rows),
    )
    return Live(expression=expression, overview=found, sample=sample, charts=charts)


def _builder(session: Session, field: str) -> dict[str, Any]:
    """The guided builder's state: the fields, and for the chosen one its operators and registry values."""
    fields = service.field_catalogue()
    chosen = field if field in FIELDS else ""
    operators = service.field_operators(chosen) if chosen else ()
    values = service.field_values(session=session, field=chosen) if chosen else ()
    return {
        "fields": fields,
        "field": chosen,
        "operators": [(op, translate(OPERATOR_LABELS[op])) for op in operators],
        "choices": values,
        "free_value": bool(chosen) and not FIELDS[chosen].allowed,
        "needs_value": bool(chosen) and operators[0] not in ("yes", "is not null"),
    }


def _page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    expression: str,
    field: str = "",
    flash: str | None = None,
    builder_error: str | None = None,
    save_error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "audiences.html",
        status=status,
        principal=principal,
        section="audiences",
        live=_live(session, principal, expression),
        builder=_builder(session, field),
        builder_error=builder_error,
        save_error=save_error,
        saved=service.list_audiences(session=session),
        can_save=permissions.allowed(principal.role, "audiences.save"),
        gender_word=gender_word,
        flash=flash,
    )


@router.get("")
def audiences_page(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audiences.read"))],
    expression: Expression = "",
    field: Annotated[str, Query(max_length=50)] = "",
    saved: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    flash = _("Audience {name} is saved.", name=saved) if saved else None
    return _page(request, session, principal, expression=expression, field=field, flash=flash)


@router.get("/live")
def live_fragment(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audiences.read"))],
    expression: Expression = "",
) -> Response:
    """The count, breakdowns, chart, warnings and sample for the expression as typed (htmx swaps it in)."""
    return render(
        request,
        "audiences_live.html",
        live=_live(session, principal, expression),
        gender_word=gender_word,
        oob=permissions.allowed(principal.role, "audiences.save"),
    )


@router.get("/builder")
def builder_fragment(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audiences.read"))],
    field: Annotated[str, Query(max_length=50)] = "",
) -> Response:
    """The builder's operator and value choices for the chosen field (htmx swaps them in)."""
    return render(request, "audiences_builder_choices.html", builder=_builder(session, field))


@router.get("/build")
def build(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audiences.read"))],
    expression: Expression = "",
    field: Annotated[str, Query(max_length=50)] = "",
    op: Annotated[str, Query(max_length=20)] = "",
    value: Annotated[str, Query(max_length=200)] = "",
    choice: Annotated[str, Query(max_length=200)] = "",
    joiner: Annotated[str, Query(max_length=3)] = "and",
    step: Annotated[str, Query(max_length=10)] = "add",
) -> Response:
    """The guided builder without JavaScript: choose a field (step=field), then add the condition it makes."""
    if step == "field" or not op:
        return _page(request, session, principal, expression=expression, field=field)
    try:
        condition = service.compose_condition(field=field, op=op, value=value.strip() or choice)
        combined = service.combine(expression=expression, condition=condition, joiner=joiner)
    except InputError as exc:
        return _page(
            request,
            session,
            principal,
            expression=expression,
            field=field,
            builder_error=str(exc),
            status=422,
        )
    return _page(request, session, principal, expression=combined, field=field)


@router.post("/save")
def save(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audiences.save"))],
    name: Annotated[str, Form(max_length=200)] = "",
    expression: Annotated[str, Form(max_length=MAX_EXPRESSION)] = "",
) -> Response:
    try:
        saved = service.save(session=session, name=name, expression=expression)
    except InputError as exc:
        session.rollback()
        return _page(request, session, principal, expression=expression, save_error=str(exc), status=422)
    audit.record(
        session=session,
        actor=principal.actor,
        action="audience.save",
        object_type="audience",
        object_id=saved.id,
        after={"name": saved.name, "expression": saved.expression},
    )
    query = urlencode({"expression": saved.expression, "saved": saved.name})
    return RedirectResponse(f"/audiences?{query}", status_code=303)


@router.post("/rename")
def rename(
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audiences.save"))],
    name: Annotated[str, Form(max_length=200)],
    new_name: Annotated[str, Form(max_length=200)],
) -> Response:
    renamed = service.rename(session=session, name=name, new_name=new_name)
    audit.record(
        session=session,
        actor=principal.actor,
        action="audience.rename",
        object_type="audience",
        object_id=renamed.id,
        before={"name": name},
        after={"name": renamed.name},
    )
    query = urlencode({"expression": renamed.expression, "saved": renamed.name})
    return RedirectResponse(f"/audiences?{query}", status_code=303)
