"""审批 (approvals): the periods waiting for approval; for one, the proof, the estimate, the audience count
and what changed since the last approved content (text diff, artwork old and new side by side); approve,
or send back with a comment. Whoever made the last change is refused (four eyes) and is not offered the
button."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from outreach.accounts import permissions
from outreach.accounts.errors import Forbidden
from outreach.campaigns import content
from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.errors import OutreachError
from outreach.i18n import N_, translate
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.campaigns import period_of
from outreach.web.pages.render import render

router = APIRouter(prefix="/approvals", include_in_schema=False)

FLASHES = {"approved": N_("Approved."), "returned": N_("Sent back to the planners with your comment.")}


@router.get("")
def approval_list(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.read"))],
) -> Response:
    return render(
        request,
        "approvals.html",
        principal=principal,
        section="approvals",
        waiting=content.waiting(session=session),
        recent=content.recent_reviews(session=session),
    )


def approval_page(
    request: Request,
    session: Session,
    principal: Principal,
    campaign: Campaign,
    period: str,
    *,
    flash: str | None = None,
    error: str | None = None,
    comment: str = "",
    status: int = 200,
) -> Response:
    """The approver's view of one period (also re-shown with a refusal)."""
    review = content.review(session=session, campaign=campaign, period=period)
    proof, proof_problem = None, None
    if campaign.channel == "letter":
        try:
            proof = content.proof(session=session, campaign=campaign, period=period)
        except OutreachError as exc:
            proof_problem = str(exc)
    try:
        estimate, estimate_problem = (
            campaigns.estimate(session=session, campaign=campaign, period=period),
            None,
        )
    except OutreachError as exc:
        estimate, estimate_problem = None, str(exc)
    return render(
        request,
        "approval.html",
        status=status,
        principal=principal,
        section="approvals",
        campaign=campaign,
        detail=campaigns.detail(session=session, campaign=campaign),
        period=period,
        review=review,
        proof=proof,
        proof_problem=proof_problem,
        estimate=estimate,
        estimate_problem=estimate_problem,
        diff=content.changes_since_approval(session=session, campaign=campaign, period=period),
        changes=content.changes(session=session, campaign=campaign, period=period),
        may_review=permissions.allowed(principal.role, "campaigns.approve"),
        own_change=review.own_change(principal.account_id),
        error=error,
        comment=comment,
        flash=flash,
    )


@router.get("/{campaign_id}/{period}")
def approval_view(
    campaign_id: int,
    period: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.read"))],
    done: str | None = None,
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    flash = translate(FLASHES[done]) if done in FLASHES else None
    return approval_page(request, session, principal, campaign, period_of(period), flash=flash)


@router.post("/{campaign_id}/{period}/approve")
def approve(
    campaign_id: int,
    period: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.approve"))],
    force: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    quarter = period_of(period)
    try:
        content.approve(
            session=session, campaign=campaign, period=quarter, actor=principal.actor, force=force == "yes"
        )
    except OutreachError as exc:
        session.rollback()
        content.record_refusal(
            session=session, campaign=campaign, period=quarter, actor=principal.actor, reason=str(exc)
        )
        session.commit()
        return approval_page(
            request,
            session,
            principal,
            campaign,
            quarter,
            error=str(exc),
            status=403 if isinstance(exc, Forbidden) else 409,
        )
    return RedirectResponse(f"/approvals/{campaign.id}/{quarter}?done=approved", status_code=303)


@router.post("/{campaign_id}/{period}/send-back")
def send_back(
    campaign_id: int,
    period: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.approve"))],
    comment: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    quarter = period_of(period)
    try:
        content.send_back(
            session=session, campaign=campaign, period=quarter, actor=principal.actor, comment=comment
        )
    except OutreachError as exc:
        session.rollback()
        return approval_page(
            request, session, principal, campaign, quarter, error=str(exc), comment=comment, status=422
        )
    return RedirectResponse(f"/approvals/{campaign.id}/{quarter}?done=returned", status_code=303)
