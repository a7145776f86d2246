"""活动 (campaigns): the list, the wizard that creates one (a multi-step form that works without JS), and per
period the content (the letter's text blocks, the kit's ad slots with artwork checked by the kit's preflight),
the proof, the cost estimate with waived fees, the glyph check, and submission for approval."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from audiences import service as audiences
from outreach.accounts import service as accounts
from outreach.campaigns import content
from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.errors import InputError, OutreachError
from outreach.i18n import N_, _, translate
from outreach.ledger import service as ledger
from outreach.money import parse_yuan
from outreach.offers.service import MAX_ARTWORK_BYTES
from outreach.periods import local_date, normalise_period, parse_quarter, quarter_of
from outreach.render import kits_dir
from outreach.render.kit import MANIFEST
from outreach.runs.states import run_state_label
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.render import env, render

router = APIRouter(prefix="/campaigns", include_in_schema=False)

WIZARD_STEPS = 4
CAMPAIGN_STATES = {
    "draft": N_("draft"),
    "approved": N_("approved"),
    "active": N_("scheduled"),
    "finished": N_("finished"),
    "cancelled": N_("cancelled"),
}
CONTENT_STATES = {
    "draft": N_("being prepared"),
    "submitted": N_("waiting for approval"),
    "returned": N_("sent back"),
    "approved": N_("approved"),
}
CHANGE_LABELS = {"submitted": N_("submitted"), "returned": N_("sent back"), "approved": N_("approved")}


def campaign_state(state: str) -> str:
    """A campaign's state in words."""
    return translate(CAMPAIGN_STATES[state]) if state in CAMPAIGN_STATES else state


def content_state(state: str) -> str:
    """A period content's review state in words."""
    return translate(CONTENT_STATES[state]) if state in CONTENT_STATES else state


FACES = {
    "envelope.front": N_("envelope front"),
    "envelope.back": N_("envelope back"),
    "envelope.flap": N_("envelope flap"),
}


def face_label(face: str) -> str:
    """Where a slot is, in words ('letter.advertising' -> 信函 advertising 页)."""
    if face in FACES:
        return translate(FACES[face])
    return _("letter, page {page}", page=face.removeprefix("letter."))


def change_label(what: str) -> str:
    """What a change record says was changed ('text:letter_body.j2' -> 正文 letter_body.j2)."""
    kind, _sep, name = what.partition(":")
    if kind == "text":
        return _("text {name}", name=name)
    if kind == "artwork":
        return _("artwork of slot {name}", name=name)
    return translate(CHANGE_LABELS[kind]) if kind in CHANGE_LABELS else what


env.globals.update(
    face_label=face_label,
    campaign_state=campaign_state,
    content_state=content_state,
    change_label=change_label,
    run_state=run_state_label,
)
Text = Annotated[str, Form(max_length=300)]


def next_quarter() -> str:
    """The quarter after today's (the period a planner most likely prepares)."""
    return str(quarter_of(local_date()).next())


def period_of(text: str) -> str:
    """A period from the address, as the service stores it (2027-Q1)."""
    return str(parse_quarter(text))


# --- the list ------------------------------------------------------------------------------------------


@router.get("")
def campaign_list(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.read"))],
) -> Response:
    return render(
        request,
        "campaigns.html",
        principal=principal,
        section="campaigns",
        campaigns=campaigns.summaries(session=session),
        may_prepare=_may(principal, "campaigns.prepare"),
    )


def _may(principal: Principal, permission: str) -> bool:
    from outreach.accounts import permissions

    return permissions.allowed(principal.role, permission)


# --- the wizard ----------------------------------------------------------------------------------------


@dataclass
class Draft:
    """The wizard's answers so far (carried from step to step in hidden fields)."""

    name: str = ""
    audience: str = ""
    channel: str = "letter"
    kit: str = ""
    rate_card: str = ""
    print_shop: str = ""
    budget: str = ""
    budget_period: str = ""
    schedule: str = "quarterly"


@dataclass(frozen=True)
class KitChoice:
    """A shipped kit and its channel."""

    name: str
    title: str
    channel: str


def kit_choices() -> list[KitChoice]:
    """The kits shipped in templates/, with their title and channel (read from their manifest)."""
    out = []
    for folder in sorted(kits_dir().iterdir()):
        manifest = folder / MANIFEST
        if not manifest.is_file():
            continue
        try:
            data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        out.append(
            KitChoice(folder.name, str(data.get("title", folder.name)), str(data.get("channel", "letter")))
        )
    return out


def _choices(session: Session) -> dict[str, Any]:
    return {
        "audiences": audiences.list_audiences(session=session),
        "kits": kit_choices(),
        "rate_cards": sorted({c.code for c in ledger.rate_card_versions(session=session)}),
        "print_shops": [o.name for o in accounts.list_organisations(session=session, kind="printshop")],
    }


def _check_step(session: Session, step: int, d: Draft) -> None:
    """Checks the answers of one step with the service's own rules; InputError/NotFound say what is wrong."""
    if step == 1:
        name = campaigns.check_campaign_name(d.name)
        if any(c.name == name for c in campaigns.list_all(session=session)):
            raise InputError(_("a campaign named {name!r} exists already", name=name))
        d.name = name
        audiences.get_by_name(session=session, name=d.audience)
        if d.channel not in ("letter", "sms"):
            raise InputError(_("choose a channel"))
    elif step == 2:
        kit = next((k for k in kit_choices() if k.name == d.kit), None)
        if kit is None:
            raise InputError(_("choose a kit"))
        if kit.channel != d.channel:
            raise InputError(
                _(
                    "kit {kit} is for {kit_channel}, not {channel}",
                    kit=kit.name,
                    kit_channel=kit.channel,
                    channel=d.channel,
                )
            )
        if d.rate_card not in {c.code for c in ledger.rate_card_versions(session=session)}:
            raise InputError(_("choose a rate card (finance enters them on the ledger page)"))
        if d.print_shop:
            accounts.print_shop(session=session, name=d.print_shop)
    elif step == 3:
        if d.budget.strip():
            parse_yuan(d.budget, what=_("budget"))
            d.budget_period = normalise_period(d.budget_period or str(local_date().year))
        if d.schedule not in ("quarterly", "manual"):
            raise InputError(_("choose a schedule"))


def _wizard(
    request: Request,
    session: Session,
    principal: Principal,
    step: int,
    d: Draft,
    error: str | None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "campaign_new.html",
        status=status,
        principal=principal,
        section="campaigns",
        step=step,
        steps=WIZARD_STEPS,
        draft=d,
        error=error,
        **_choices(session),
    )


@router.get("/new")
def wizard_start(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.prepare"))],
) -> Response:
    return _wizard(request, session, principal, 1, Draft(budget_period=str(local_date().year)), None)


@router.post("/new")
def wizard_step(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.prepare"))],
    step: Annotated[int, Form(ge=1, le=WIZARD_STEPS)],
    go: Annotated[str, Form(max_length=10)] = "next",
    name: Text = "",
    audience: Text = "",
    channel: Annotated[str, Form(max_length=10)] = "letter",
    kit: Text = "",
    rate_card: Text = "",
    print_shop: Text = "",
    budget: Annotated[str, Form(max_length=40)] = "",
    budget_period: Annotated[str, Form(max_length=20)] = "",
    schedule: Annotated[str, Form(max_length=10)] = "quarterly",
) -> Response:
    d = Draft(name, audience, channel, kit, rate_card, print_shop, budget, budget_period, schedule)
    if go == "back":
        return _wizard(request, session, principal, max(1, step - 1), d, None)
    if step < WIZARD_STEPS:
        try:
            _check_step(session, step, d)
        except OutreachError as exc:
            return _wizard(request, session, principal, step, d, str(exc), status=422)
        return _wizard(request, session, principal, step + 1, d, None)
    try:
        for earlier in range(1, WIZARD_STEPS):
            _check_step(session, earlier, d)
        campaign = campaigns.create(
            session=session,
            name=d.name,
            audience=d.audience,
            kit=d.kit,
            channel=d.channel,
            rate_card_code=d.rate_card,
            schedule=d.schedule,
            print_shop=d.print_shop or None,
        )
        if d.budget.strip():
            ledger.set_budget(
                session=session,
                campaign_id=campaign.id,
                period=d.budget_period,
                amount_fen=parse_yuan(d.budget, what=_("budget")),
                reason=_("set when the campaign was created"),
            )
    except OutreachError as exc:
        session.rollback()
        return _wizard(request, session, principal, step, d, str(exc), status=422)
    return RedirectResponse(f"/campaigns/{campaign.id}?done=created", status_code=303)


# --- one campaign ----------------------------------------------------------------------------------------


@router.get("/{campaign_id}")
def campaign_page(
    campaign_id: int,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.read"))],
    done: str | None = None,
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    flash = {"created": _("The campaign is created. Prepare the content of a period next.")}.get(done or "")
    return render(
        request,
        "campaign.html",
        principal=principal,
        section="campaigns",
        campaign=campaigns.detail(session=session, campaign=campaign),
        periods=content.periods(session=session, campaign=campaign),
        budgets=ledger.budget_lines(session=session, campaign_id=campaign.id),
        suggested=next_quarter(),
        may_prepare=_may(principal, "campaigns.prepare"),
        flash=flash,
    )


@router.get("/{campaign_id}/period")
def choose_period(
    campaign_id: int, period: str, _p: Annotated[Principal, Depends(require("campaigns.read"))]
) -> Response:
    return RedirectResponse(f"/campaigns/{campaign_id}/periods/{period_of(period)}", status_code=303)


def _estimate_or_problem(
    session: Session, campaign: Campaign, period: str
) -> tuple[object | None, str | None]:
    try:
        return campaigns.estimate(session=session, campaign=campaign, period=period), None
    except OutreachError as exc:
        return None, str(exc)


def period_page(
    request: Request,
    session: Session,
    principal: Principal,
    campaign: Campaign,
    period: str,
    *,
    flash: str | None = None,
    errors: dict[str, str] | None = None,
    texts: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The content page of one period (also re-shown with the reason next to a refused slot or block)."""
    kit = content.content_kit(session=session, campaign=campaign, period=period)
    review = content.review(session=session, campaign=campaign, period=period)
    own = content.periods(session=session, campaign=campaign)
    stored = next((p.blocks for p in own if p.period == period), {}) or {}
    blocks = content.text_blocks(kit, stored) if campaign.channel == "letter" else []
    estimate, estimate_problem = _estimate_or_problem(session, campaign, period)
    return render(
        request,
        "campaign_period.html",
        status=status,
        principal=principal,
        section="campaigns",
        campaign=campaign,
        period=period,
        review=review,
        blocks=blocks,
        texts=texts or {},
        slots=content.slots(session=session, campaign=campaign, period=period),
        merchants=[o.name for o in accounts.list_organisations(session=session, kind="merchant") if o.active],
        estimate=estimate,
        estimate_problem=estimate_problem,
        changes=content.changes(session=session, campaign=campaign, period=period),
        may_prepare=_may(principal, "campaigns.prepare"),
        errors=errors or {},
        flash=flash,
        quarter=parse_quarter(period),
    )


FLASHES = {
    "text": N_("The text is saved."),
    "artwork": N_("The artwork passed the kit's checks and is in the slot."),
    "submitted": N_("Submitted for approval."),
}


@router.get("/{campaign_id}/periods/{period}")
def period_view(
    campaign_id: int,
    period: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.read"))],
    done: str | None = None,
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    flash = translate(FLASHES[done]) if done in FLASHES else None
    return period_page(request, session, principal, campaign, period_of(period), flash=flash)


@router.post("/{campaign_id}/periods/{period}/text")
async def save_text(
    campaign_id: int,
    period: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.prepare"))],
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    quarter = period_of(period)
    form = await request.form()
    texts = {
        str(k).removeprefix("block:"): v
        for k, v in form.multi_items()
        if str(k).startswith("block:") and isinstance(v, str)
    }
    try:
        content.save_text(
            session=session, campaign=campaign, period=quarter, blocks=texts, actor=principal.actor
        )
    except OutreachError as exc:
        session.rollback()
        return period_page(
            request, session, principal, campaign, quarter, errors={"text": str(exc)}, texts=texts, status=422
        )
    return RedirectResponse(f"/campaigns/{campaign.id}/periods/{quarter}?done=text#text", status_code=303)


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InputError(
            _("{what}: {value!r} is not a date like 2027-01-15", what=what, value=text.strip()[:20])
        ) from exc


@router.post("/{campaign_id}/periods/{period}/slots/{slot}")
def upload_artwork(
    campaign_id: int,
    period: str,
    slot: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.prepare"))],
    artwork: UploadFile,
    merchant: Text = "",
    offer_text: Annotated[str, Form(max_length=400)] = "",
    valid_from: Annotated[str, Form(max_length=20)] = "",
    valid_until: Annotated[str, Form(max_length=20)] = "",
    fee: Annotated[str, Form(max_length=40)] = "0",
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    quarter = period_of(period)
    try:
        data = artwork.file.read(MAX_ARTWORK_BYTES + 1)
        if not artwork.filename or not data:
            raise InputError(_("choose an image file to upload"))
        if not merchant:
            raise InputError(_("choose the merchant whose offer the artwork carries"))
        q = parse_quarter(quarter)
        content.replace_artwork(
            session=session,
            campaign=campaign,
            period=quarter,
            slot=slot,
            artwork=data,
            artwork_name=artwork.filename,
            merchant=accounts.get_organisation_by_name(session=session, name=merchant, kind="merchant"),
            offer_text=offer_text,
            valid_from=_day(valid_from, _("valid from")) if valid_from else q.first_day,
            valid_until=_day(valid_until, _("valid until"))
            if valid_until
            else q.next().first_day - timedelta(days=1),
            fee_fen=parse_yuan(fee or "0", what=_("ad fee")),
            actor=principal.actor,
        )
    except OutreachError as exc:
        session.rollback()
        return period_page(
            request, session, principal, campaign, quarter, errors={f"slot:{slot}": str(exc)}, status=422
        )
    return RedirectResponse(
        f"/campaigns/{campaign.id}/periods/{quarter}?done=artwork#slot-{slot}", status_code=303
    )


@router.post("/{campaign_id}/periods/{period}/submit")
def submit(
    campaign_id: int,
    period: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.prepare"))],
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    quarter = period_of(period)
    try:
        content.submit(session=session, campaign=campaign, period=quarter, actor=principal.actor)
    except OutreachError as exc:
        session.rollback()
        return period_page(
            request, session, principal, campaign, quarter, errors={"submit": str(exc)}, status=422
        )
    return RedirectResponse(f"/campaigns/{campaign.id}/periods/{quarter}?done=submitted", status_code=303)


@router.get("/{campaign_id}/periods/{period}/proof")
def proof_page(
    campaign_id: int,
    period: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("campaigns.read"))],
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    quarter = period_of(period)
    made = content.proof(session=session, campaign=campaign, period=quarter)
    return render(
        request,
        "campaign_proof.html",
        principal=principal,
        section="campaigns",
        campaign=campaign,
        period=quarter,
        proof=made,
        back=f"/campaigns/{campaign.id}/periods/{quarter}",
    )


@router.get("/{campaign_id}/proofs/{digest}/{name}")
def proof_image(
    campaign_id: int,
    digest: str,
    name: str,
    _p: Annotated[Principal, Depends(require("campaigns.read"))],
) -> Response:
    path = content.proof_png(digest, name)
    return Response(
        path.read_bytes(),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=86400, immutable"},
    )


@router.get("/{campaign_id}/artwork/{sha256}.png")
def artwork_image(
    campaign_id: int,
    sha256: str,
    session: DbSession,
    _p: Annotated[Principal, Depends(require("campaigns.read"))],
) -> Response:
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    data = content.artwork_preview(session=session, campaign=campaign, sha256=sha256[:64])
    return Response(
        data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400, immutable"}
    )
