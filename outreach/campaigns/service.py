"""Campaign service: create, look up (by id or name), estimate, approve (content per period), change, cancel.

The approval estimate lives here (reach, cost against budget, and the recipients no font can draw), so the CLI
and the web API show the same thing. Names are checked here, for every edge: 1-100 characters, no control
characters, not only digits (digits address a campaign by id).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences import service as audiences
from audiences.models import Audience, Worker
from outreach.accounts import service as accounts
from outreach.campaigns.models import CHANNELS, SCHEDULES, Campaign
from outreach.campaigns.names import clean_name
from outreach.campaigns.schemas import (
    CampaignEstimate,
    CampaignOut,
    CampaignSummary,
    GlyphProblem,
    GlyphReport,
    RunRow,
)
from outreach.db import utcnow
from outreach.errors import Conflict, GlyphError, InputError, NotFound, StateError
from outreach.i18n import _, translate
from outreach.ledger import service as ledger
from outreach.offers import service as offers
from outreach.periods import parse_quarter
from outreach.render import (
    KitOptions,
    Recipient,
    check_glyphs,
    kit_digest,
    load_kit,
    load_kit_cached,
    resolve_kit_path,
)
from outreach.runs.models import DEFAULT_BATCH_SIZE, Run
from outreach.settings import get_settings

NAME_LENGTH = 100  # campaigns.name is VARCHAR(100)
# How many glyph problems an estimate lists (the total is always counted).
GLYPH_LIST_LIMIT = 50


def get(*, session: Session, campaign_id: int) -> Campaign:
    """Gets a campaign by id; NotFound if there is none."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(_("no campaign with id {id}", id=campaign_id))
    return campaign


def get_by_ref(*, session: Session, ref: str | int) -> Campaign:
    """Gets a campaign by a reference a person gives: its name, or its id ('12' or '#12')."""
    if isinstance(ref, int):
        return get(session=session, campaign_id=ref)
    text = unicodedata.normalize("NFKC", ref).strip()
    campaign = session.scalar(select(Campaign).where(Campaign.name == text))
    if campaign is None and text.removeprefix("#").isdigit() and len(text) < 12:
        campaign = session.get(Campaign, int(text.removeprefix("#")))
    if campaign is None:
        known = session.scalars(select(Campaign.name).order_by(Campaign.name).limit(20)).all()
        if known:
            raise NotFound(_("no campaign {ref!r} (campaigns: {known})", ref=ref, known=", ".join(known)))
        raise NotFound(_("no campaign {ref!r} (there are no campaigns yet)", ref=ref))
    return campaign


def get_by_name(*, session: Session, name: str) -> Campaign:
    """Gets a campaign by name (or id); NotFound names the ones that exist."""
    return get_by_ref(session=session, ref=name)


def check_campaign_name(name: object) -> str:
    """A campaign name as stored: stripped, 1-100 characters, no control characters, not only digits."""
    text = clean_name(name, what=_("campaign name"), max_length=NAME_LENGTH)
    if text.removeprefix("#").isdigit():
        raise InputError(
            _("campaign name {name!r}: a name of digits only would read as a campaign id", name=text)
        )
    return text


def list_all(*, session: Session) -> Sequence[Campaign]:
    """Lists every campaign, newest first."""
    return session.scalars(select(Campaign).order_by(Campaign.id.desc())).all()


def create(
    *,
    session: Session,
    name: str,
    audience: str,
    kit: str,
    channel: str,
    rate_card_code: str,
    schedule: str = "manual",
    print_shop: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Campaign:
    """Creates a draft campaign after checking its name, audience, kit and channel fit together."""
    name = check_campaign_name(name)
    rate_card_code = clean_name(rate_card_code, what=_("rate card code"), max_length=50)
    kit = clean_name(kit, what=_("kit"), max_length=300)  # campaigns.kit is VARCHAR(300)
    if channel not in CHANNELS:
        raise InputError(
            _("channel must be one of {allowed}, not {value!r}", allowed=", ".join(CHANNELS), value=channel)
        )
    if schedule not in SCHEDULES:
        raise InputError(
            _(
                "schedule must be one of {allowed}, not {value!r}",
                allowed=", ".join(SCHEDULES),
                value=schedule,
            )
        )
    if batch_size < 1:
        raise InputError(_("batch size must be at least 1"))
    if session.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
        raise Conflict(_("a campaign named {name!r} exists already", name=name))
    saved = audiences.get_by_name(session=session, name=audience)
    loaded = load_kit(kit, KitOptions.from_settings(get_settings()))
    if loaded.channel != channel:
        raise InputError(
            _(
                "kit {kit!r} is for {kit_channel}, but the campaign's channel is {channel}",
                kit=loaded.name,
                kit_channel=loaded.channel,
                channel=channel,
            )
        )
    # A named print shop must exist (outreach printshop add); an unknown name is refused naming known ones.
    shop = accounts.print_shop(session=session, name=print_shop) if print_shop else None
    campaign = Campaign(
        name=name,
        audience_id=saved.id,
        kit=kit,
        channel=channel,
        rate_card_code=rate_card_code,
        schedule=schedule,
        print_shop_id=shop.id if shop is not None else None,
        batch_size=batch_size,
        state="draft",
    )
    session.add(campaign)
    session.flush()
    return campaign


def content_hash(*, session: Session, campaign: Campaign, period: str | None = None) -> str:
    """A digest of what an approval covers: the kit's files, the audience expression and the channel, and
    the period's ad bookings (merchant, offer, validity, fee, artwork) and its own letter text when it has
    any (outreach.campaigns.content)."""
    audience = session.get(Audience, campaign.audience_id)
    assert audience is not None  # a foreign key guarantees it
    # The kit's digest alone (no full load): this runs on every schedule tick and run start.
    digest = kit_digest(resolve_kit_path(campaign.kit))
    text = "\n".join((digest, audience.expression, campaign.channel))
    booked = offers.bookings_digest(session=session, campaign_id=campaign.id, period=period)
    if booked is not None:
        text += "\n" + booked
    from outreach.campaigns import content  # content imports this module

    written = content.text_digest(session=session, campaign_id=campaign.id, period=period)
    if written is not None:
        text += "\ntext " + written
    return hashlib.sha256(text.encode()).hexdigest()


def approve(*, session: Session, campaign: Campaign, period: str, force: bool = False) -> Campaign:
    """Approves the campaign's current content for one period (the proof and the estimate were checked).

    Refuses (GlyphError) while some recipients' names or addresses hold characters no configured font can
    draw, unless `force`: their pieces would fail in the run, so the planner fixes the registry or adds a font
    first, or approves knowingly.
    """
    if campaign.state in ("cancelled", "finished"):
        raise StateError(
            _("campaign {name!r} is {state} and cannot be approved", name=campaign.name, state=campaign.state)
        )
    quarter = str(parse_quarter(period))
    # What is approved must load and pass preflight now.
    load_kit(campaign.kit, KitOptions.from_settings(get_settings()))
    if not force:
        glyphs = glyph_problems(session=session, campaign=campaign, limit=3)
        if glyphs.total:
            first = "; ".join(f"{p.name} ({p.unit_name}): {p.characters}" for p in glyphs.problems)
            raise GlyphError(
                _(
                    "{count} recipients have characters no configured font can draw (e.g. {first}); fix the"
                    " registry or add a font, or approve anyway with --force (their pieces will fail)",
                    count=glyphs.total,
                    first=first,
                )
            )
    campaign.approved_hash = content_hash(session=session, campaign=campaign, period=quarter)
    campaign.approved_period = quarter
    campaign.approved_at = utcnow()
    if campaign.first_period is None or quarter < campaign.first_period:
        campaign.first_period = quarter
    if campaign.state == "draft":
        campaign.state = "approved"
    session.flush()
    return campaign


def approval_problem(*, session: Session, campaign: Campaign, period: str) -> str | None:
    """Why the campaign may not run `period` now, or None when it may."""
    if campaign.state not in ("approved", "active"):
        return _(
            "campaign {name} is {state}, not approved", name=campaign.name, state=translate(campaign.state)
        )
    if campaign.approved_period != period:
        if campaign.approved_period:
            return _(
                "the content of campaign {name} for {period} has not been approved (approved content is for "
                "{approved})",
                name=campaign.name,
                period=period,
                approved=campaign.approved_period,
            )
        return _(
            "the content of campaign {name} for {period} has not been approved",
            name=campaign.name,
            period=period,
        )
    if campaign.approved_hash != content_hash(session=session, campaign=campaign, period=period):
        return _(
            "campaign {name} changed (kit, audience or ad bookings) after approval; approve it again",
            name=campaign.name,
        )
    return None


def change(
    *, session: Session, campaign: Campaign, kit: str | None = None, audience: str | None = None
) -> Campaign:
    """Changes the kit or audience; the campaign then needs a new approval."""
    if campaign.state in ("cancelled", "finished"):
        raise StateError(_("campaign {name!r} is {state}", name=campaign.name, state=campaign.state))
    if kit is not None:
        kit = clean_name(kit, what=_("kit"), max_length=300)
        loaded = load_kit(kit, KitOptions.from_settings(get_settings()))
        if loaded.channel != campaign.channel:
            raise InputError(
                _(
                    "kit {kit!r} is for {kit_channel}, not {channel}",
                    kit=loaded.name,
                    kit_channel=loaded.channel,
                    channel=campaign.channel,
                )
            )
        campaign.kit = kit
    if audience is not None:
        campaign.audience_id = audiences.get_by_name(session=session, name=audience).id
    # Keep the state (an active campaign stays scheduled) but drop the approval: its runs wait for a new one.
    campaign.approved_hash = None
    campaign.approved_period = None
    session.flush()
    return campaign


def cancel(*, session: Session, campaign: Campaign) -> Campaign:
    """Cancels the campaign: the schedule stops running it."""
    campaign.state = "cancelled"
    session.flush()
    return campaign


# --- what the planner checks before approving ---------------------------------------------------------


def reach(*, session: Session, campaign: Campaign, today: date | None = None) -> int:
    """How many recipients the campaign reaches now on its channel (what a run would freeze)."""
    from outreach.runs import service as runs  # runs imports this module

    audience = session.get(Audience, campaign.audience_id)
    assert audience is not None  # a foreign key guarantees it
    return audiences.count(
        session=session,
        expression=audience.expression,
        channel=runs.reach_channel(campaign),
        today=today,
        check_values=False,
    ).total


def glyph_problems(
    *, session: Session, campaign: Campaign, limit: int = GLYPH_LIST_LIMIT, today: date | None = None
) -> GlyphReport:
    """The recipients of a letter campaign whose printed name, unit or address no configured font can draw.

    Only recipients holding a character that some font chain of the kit lacks are checked piece by piece (with
    the renderer's own check), so a clean registry of any size costs one pass over its text.
    """
    if campaign.channel != "letter":
        return GlyphReport(total=0, problems=())
    kit = load_kit_cached(campaign.kit, KitOptions.from_settings(get_settings()))
    chains = list(kit.fonts.values())
    audience = session.get(Audience, campaign.audience_id)
    assert audience is not None
    source = audiences.recipient_select(expression=audience.expression, channel="letter", today=today)
    drawable: dict[str, bool] = {}

    def suspicious(text: str) -> bool:
        for ch in text:
            ok = drawable.get(ch)
            if ok is None:
                ok = drawable[ch] = all(not chain.missing(ch) for chain in chains)
            if not ok:
                return True
        return False

    candidates: dict[str, Recipient] = {}
    for row in session.execute(source.execution_options(yield_per=5000)):
        text = "".join(v or "" for v in (row.name, row.unit_name, row.address, row.postcode, row.township))
        if suspicious(text):
            key = str(row.worker_id)
            candidates[key] = Recipient(
                number=key,
                seq=len(candidates) + 1,
                name=row.name,
                gender=row.gender,
                unit_name=row.unit_name,
                address=row.address,
                postcode=row.postcode,
                township=row.township,
            )
    missing = check_glyphs(kit, candidates.values()) if candidates else {}
    numbers = sorted(missing, key=int)
    shown = [int(n) for n in numbers[:limit]]
    worker_nos = {
        int(i): no
        for i, no in session.execute(select(Worker.id, Worker.worker_no).where(Worker.id.in_(shown)))
    }
    problems = []
    for number in numbers[:limit]:
        r, chars = candidates[number], missing[number]
        where = [
            label
            for label, value in (
                (_("name"), r.name),
                (_("unit"), r.unit_name),
                (_("address"), r.address or ""),
                (_("postcode"), r.postcode or ""),
            )
            if any(c in value for c in chars)
        ]
        problems.append(
            GlyphProblem(
                worker_id=int(number),
                worker_no=worker_nos.get(int(number)),
                name=r.name,
                unit_name=r.unit_name,
                fields=tuple(where),
                characters=chars,
            )
        )
    return GlyphReport(total=len(numbers), problems=tuple(problems))


def estimate(
    *, session: Session, campaign: Campaign, period: str, today: date | None = None
) -> CampaignEstimate:
    """What approving `period` would mean: the reach, its cost against the budget, and glyph problems.

    The cost is priced with the rate card in force on the period's planned mailing date, as the run will be.
    """
    quarter = str(parse_quarter(period))
    pieces = reach(session=session, campaign=campaign, today=today)
    from outreach.runs import service as runs  # runs imports this module

    parts = runs.max_parts(load_kit_cached(campaign.kit, KitOptions.from_settings(get_settings())))
    cost = ledger.estimate(
        session=session,
        campaign_id=campaign.id,
        period=quarter,
        pieces=pieces,
        channel=campaign.channel,
        parts_per_piece=parts,
        on=ledger.pricing_date(quarter, today=today),
    )
    return CampaignEstimate(
        campaign_id=campaign.id,
        campaign_name=campaign.name,
        period=quarter,
        reach=pieces,
        cost=cost,
        glyphs=glyph_problems(session=session, campaign=campaign, today=today),
    )


# --- listings ------------------------------------------------------------------------------------------


def _run_row(run: Run) -> RunRow:
    return RunRow(id=run.id, period=run.period, state=run.state, pieces=run.piece_count or 0, note=run.note)


def detail(*, session: Session, campaign: Campaign) -> CampaignOut:
    """A campaign with its audience, approval and runs."""
    audience = session.get(Audience, campaign.audience_id)
    assert audience is not None
    runs = session.scalars(select(Run).where(Run.campaign_id == campaign.id).order_by(Run.period)).all()
    shop = campaign.print_shop
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        state=campaign.state,
        channel=campaign.channel,
        kit=campaign.kit,
        audience=audience.name,
        expression=audience.expression,
        rate_card=campaign.rate_card_code,
        schedule=campaign.schedule,
        print_shop=shop.name if shop is not None else None,
        approved_period=campaign.approved_period,
        approved_at=campaign.approved_at,
        runs=tuple(_run_row(r) for r in runs),
    )


def summaries(*, session: Session) -> list[CampaignSummary]:
    """Every campaign, newest first, with the runs that wait for an approval or a budget."""
    waiting: dict[int, list[RunRow]] = {}
    for run in session.scalars(select(Run).where(Run.state == "waiting").order_by(Run.period)):
        waiting.setdefault(run.campaign_id, []).append(_run_row(run))
    return [
        CampaignSummary(
            id=c.id,
            name=c.name,
            channel=c.channel,
            state=c.state,
            schedule=c.schedule,
            approved_period=c.approved_period,
            waiting=tuple(waiting.get(c.id, ())),
        )
        for c in list_all(session=session)
    ]
