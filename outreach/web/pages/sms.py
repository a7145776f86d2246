"""短信 (SMS campaigns): writing a campaign's text with the parts per message and the cost shown as it is
typed (an htmx fragment; a plain form without JavaScript), counted by the one SMS counter
(outreach.render.sms) with the union's 【signature】 and the opt-out text, priced by the campaign's rate
card, with its sending hours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from outreach.accounts import permissions
from outreach.campaigns import content
from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.channels.quiet_hours import KIND_NAMES, window_for
from outreach.errors import OutreachError
from outreach.i18n import _, translate
from outreach.ledger import service as ledger
from outreach.ledger.schemas import Estimate
from outreach.periods import local_date, quarter_of
from outreach.render import Kit, KitOptions, Recipient, load_kit_cached
from outreach.render.sms import PART_LIMIT, SINGLE_LIMIT, SmsMessage, draft
from outreach.settings import get_settings
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.render import render

router = APIRouter(prefix="/sms", include_in_schema=False)

MAX_TEXT = 2000
Text = Annotated[str | None, Query(max_length=MAX_TEXT)]
# Who the count is shown for: a three-character name and a long unit, as most recipients have.
SAMPLE = Recipient(
    number="R000000-0000001",
    seq=1,
    name="王秀英",
    gender="F",
    unit_name="尤溪县城关镇第一纺织有限公司",
    address="城关镇人民路1号",
    postcode="365100",
    township="城关镇",
    mobile="13900000000",
    code="QJR-0000-0000",
)


@dataclass(frozen=True)
class Count:
    """What the live part shows for the text as typed: the message, its parts, and the cost."""

    message: SmsMessage
    estimate: Estimate | None
    reach: int | None
    problem: str | None


def sms_campaigns(session: Session) -> list[Campaign]:
    """The campaigns that send SMS."""
    return [c for c in campaigns.list_all(session=session) if c.channel == "sms"]


def _kit(campaign: Campaign) -> Kit:
    return load_kit_cached(campaign.kit, KitOptions.from_settings(get_settings()))


def period_of(campaign: Campaign) -> str:
    """The period the text is for: the campaign's approved one, else this quarter."""
    return campaign.approved_period or str(quarter_of(local_date()))


def count(session: Session, campaign: Campaign, kit: Kit, text: str) -> Count:
    """Counts the text for one recipient and prices the campaign's reach with the rate card's part price."""
    message = draft(kit, text, SAMPLE, context={"campaign": campaign.name, "period": period_of(campaign)})
    if message.error or not message.parts:
        return Count(message, None, None, None)
    try:
        reach = campaigns.reach(session=session, campaign=campaign)
        est = ledger.estimate(
            session=session,
            campaign_id=campaign.id,
            period=period_of(campaign),
            pieces=reach,
            channel="sms",
            parts_per_piece=message.parts,
        )
    except OutreachError as exc:
        return Count(message, None, None, str(exc))
    return Count(message, est, reach, None)


def _context(session: Session, campaign: Campaign | None, text: str | None) -> dict[str, Any]:
    if campaign is None:
        return {"campaign": None}
    kit = _kit(campaign)
    saved, own = content.sms_text(session=session, campaign=campaign, period=period_of(campaign))
    body = saved if text is None else text
    window = window_for(campaign.sms_kind, campaign.sms_hours)
    return {
        "campaign": campaign,
        "kit": kit,
        "text": body,
        "live": count(session, campaign, kit, body),
        "window": window,
        "window_start": f"{window.start:%H:%M}",
        "window_end": "24:00" if window.end.hour == 23 and window.end.minute == 59 else f"{window.end:%H:%M}",
        "kind": translate(KIND_NAMES.get(campaign.sms_kind, campaign.sms_kind)),
        "period": period_of(campaign),
        "own_text": own,
        "sample": SAMPLE,
        "single_limit": SINGLE_LIMIT,
        "part_limit": PART_LIMIT,
    }


def _page(
    request: Request,
    session: Session,
    principal: Principal,
    campaign: int | None,
    text: str | None,
    *,
    status: int = 200,
    flash: str | None = None,
    error: str | None = None,
) -> Response:
    found = sms_campaigns(session)
    chosen = None
    if campaign is not None:
        chosen = campaigns.get(session=session, campaign_id=campaign)
        if chosen.channel != "sms":
            chosen = None
    elif found:
        chosen = found[0]
    return render(
        request,
        "sms.html",
        status=status,
        section="sms",
        principal=principal,
        campaigns=found,
        can_prepare=permissions.allowed(principal.role, "campaigns.prepare"),
        flash=flash,
        error=error,
        **_context(session, chosen, text),
    )


@router.get("")
def sms_page(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.read"))],
    campaign: int | None = None,
    text: Text = None,
    done: str | None = None,
) -> Response:
    flash = {
        "saved": _("The text is saved for the period; submit it for approval on the campaign's page."),
        "unchanged": _("The text is unchanged."),
    }.get(done or "")
    return _page(request, session, principal, campaign, text, flash=flash)


@router.post("/preview")
def sms_preview(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.read"))],
    campaign: Annotated[int, Form()],
    text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
) -> Response:
    """The count without JavaScript: the same page with the parts and cost of the text sent."""
    return _page(request, session, principal, campaign, text)


@router.post("/save")
def sms_save(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.prepare"))],
    campaign: Annotated[int, Form()],
    text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
) -> Response:
    chosen = campaigns.get(session=session, campaign_id=campaign)
    try:
        changed = content.save_sms_text(
            session=session, campaign=chosen, period=period_of(chosen), text=text, actor=principal.actor
        )
    except OutreachError as exc:
        session.rollback()
        return _page(request, session, principal, campaign, text, status=422, error=str(exc))
    done = "saved" if changed else "unchanged"
    return RedirectResponse(f"/sms?campaign={campaign}&done={done}", status_code=303)


@router.get("/count")
def sms_count(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.read"))],
    campaign: int,
    text: Text = None,
) -> Response:
    chosen = campaigns.get(session=session, campaign_id=campaign)
    if chosen.channel != "sms":
        return render(
            request,
            "sms_count.html",
            live=None,
            problem=_("campaign {name} does not send SMS", name=chosen.name),
        )
    kit = _kit(chosen)
    live = count(session, chosen, kit, text or "")
    return render(request, "sms_count.html", live=live, problem=None, sample=SAMPLE)
