"""Campaign service: create, approve (content per period), change, cancel, look up."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences import service as audiences
from audiences.models import Audience
from outreach.campaigns.models import CHANNELS, SCHEDULES, Campaign
from outreach.db import utcnow
from outreach.errors import Conflict, InputError, NotFound, StateError
from outreach.periods import parse_quarter
from outreach.render import kit_digest, load_kit, resolve_kit_path

DEFAULT_BATCH_SIZE = 1000


def get_by_name(*, session: Session, name: str) -> Campaign:
    """Gets a campaign by name; NotFound names the ones that exist."""
    campaign = session.scalar(select(Campaign).where(Campaign.name == name))
    if campaign is None:
        known = session.scalars(select(Campaign.name).order_by(Campaign.name).limit(20)).all()
        hint = f" (campaigns: {', '.join(known)})" if known else " (there are no campaigns yet)"
        raise NotFound(f"no campaign named {name!r}{hint}")
    return campaign


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
    """Creates a draft campaign after checking its audience, kit and channel fit together."""
    if channel not in CHANNELS:
        raise InputError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    if schedule not in SCHEDULES:
        raise InputError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    if batch_size < 1:
        raise InputError("batch size must be at least 1")
    if session.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
        raise Conflict(f"a campaign named {name!r} exists already")
    saved = audiences.get_by_name(session=session, name=audience)
    loaded = load_kit(kit)
    if loaded.channel != channel:
        raise InputError(
            f"kit {loaded.name!r} is for {loaded.channel}, but the campaign's channel is {channel}"
        )
    campaign = Campaign(
        name=name,
        audience_id=saved.id,
        kit=kit,
        channel=channel,
        rate_card_code=rate_card_code,
        schedule=schedule,
        print_shop=print_shop,
        batch_size=batch_size,
        state="draft",
    )
    session.add(campaign)
    session.flush()
    return campaign


def content_hash(*, session: Session, campaign: Campaign) -> str:
    """A digest of what an approval covers: the kit's files, the audience expression and the channel."""
    audience = session.get(Audience, campaign.audience_id)
    assert audience is not None  # a foreign key guarantees it
    # The kit's digest alone (no full load): this runs on every schedule tick and run start.
    digest = kit_digest(resolve_kit_path(campaign.kit))
    text = "\n".join((digest, audience.expression, campaign.channel))
    return hashlib.sha256(text.encode()).hexdigest()


def approve(*, session: Session, campaign: Campaign, period: str) -> Campaign:
    """Approves the campaign's current content for one period (the proof and the estimate were checked)."""
    if campaign.state in ("cancelled", "finished"):
        raise StateError(f"campaign {campaign.name!r} is {campaign.state} and cannot be approved")
    quarter = str(parse_quarter(period))
    load_kit(campaign.kit)  # what is approved must load and pass preflight now
    campaign.approved_hash = content_hash(session=session, campaign=campaign)
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
        return f"campaign {campaign.name!r} is {campaign.state}, not approved"
    if campaign.approved_period != period:
        last = f" (approved content is for {campaign.approved_period})" if campaign.approved_period else ""
        return f"the content of campaign {campaign.name!r} for {period} has not been approved{last}"
    if campaign.approved_hash != content_hash(session=session, campaign=campaign):
        return f"campaign {campaign.name!r} changed (kit or audience) after approval; approve it again"
    return None


def change(
    *, session: Session, campaign: Campaign, kit: str | None = None, audience: str | None = None
) -> Campaign:
    """Changes the kit or audience; the campaign then needs a new approval."""
    if campaign.state in ("cancelled", "finished"):
        raise StateError(f"campaign {campaign.name!r} is {campaign.state}")
    if kit is not None:
        loaded = load_kit(kit)
        if loaded.channel != campaign.channel:
            raise InputError(f"kit {loaded.name!r} is for {loaded.channel}, not {campaign.channel}")
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
