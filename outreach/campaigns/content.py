"""A campaign's content per period: the letter's text blocks, the kit's ad slots with their artwork (booked
through outreach.offers, checked by the kit's own preflight), the proof, who changed what, submission for
approval, sending back with a comment, and the approval itself under four eyes: the account that made the
last change of a period's content cannot approve it."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Template, meta
from PIL import Image, UnidentifiedImageError
from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from audiences import service as audiences
from audiences.models import Audience
from outreach.accounts import audit
from outreach.accounts.errors import Forbidden
from outreach.accounts.models import Organisation
from outreach.campaigns import service as campaigns
from outreach.campaigns.content_models import ArtworkVersion, ContentChange, PeriodContent
from outreach.campaigns.models import Campaign
from outreach.db import utcnow
from outreach.errors import InputError, KitError, NotFound, StateError
from outreach.i18n import _
from outreach.offers import service as offers
from outreach.offers.slots import slots_of, with_artwork
from outreach.periods import parse_quarter
from outreach.render import Kit, KitOptions, Recipient, load_kit_cached, render_letters
from outreach.render.kit import PIECE_VARS, Element, template_error
from outreach.render.preflight import check
from outreach.settings import get_settings

MAX_BLOCK_TEXT = 20_000
MAX_COMMENT = 2000
PROOF_PIECES = 5
PROOF_DPI = 60
THUMBNAIL_PX = 480


def _quarter(period: str) -> str:
    return str(parse_quarter(period))


def _kit(campaign: Campaign) -> Kit:
    return load_kit_cached(campaign.kit, KitOptions.from_settings(get_settings()))


# --- text blocks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextBlock:
    """One text block of the letter a planner may rewrite per period: the kit's template file it replaces."""

    name: str
    page: int
    kit_text: str
    text: str

    @property
    def changed(self) -> bool:
        """Whether the period's text differs from the kit's."""
        return self.text != self.kit_text


def _block_elements(kit: Kit) -> list[tuple[int, Element]]:
    """The letter's text blocks drawn from a template file of the kit (inline one-liners are layout)."""
    out = []
    for page_no, page in enumerate(kit.pages, start=1):
        for el in page:
            if el.kind == "text" and el.template_file and el.template_file.endswith(".j2"):
                out.append((page_no, el))
    return out


def _kit_text(kit: Kit, name: str) -> str:
    return (kit.path / name).read_text(encoding="utf-8").rstrip("\n")


def text_blocks(kit: Kit, overrides: Mapping[str, str]) -> list[TextBlock]:
    """The kit's letter text blocks with the period's text in place of the kit's where it has one."""
    blocks = []
    for page_no, el in _block_elements(kit):
        name = str(el.template_file)
        kit_text = _kit_text(kit, name)
        blocks.append(
            TextBlock(name=name, page=page_no, kit_text=kit_text, text=overrides.get(name, kit_text))
        )
    return blocks


def _compile(kit: Kit, source: str, filename: str) -> tuple[Template, bool]:
    """Compiles a block's text as the kit loader does (same sandbox); a KitError names block and line."""
    env = kit.env
    try:
        ast = env.parse(source, filename=filename)
        code = env.compile(source, filename=filename)
        variable = bool(meta.find_undeclared_variables(ast) & PIECE_VARS) or bool(
            list(meta.find_referenced_templates(ast))
        )
        template = env.template_class.from_code(env, code, env.make_globals(None))
    except Exception as exc:  # a planner's text is template source: whatever compiling raises is her error
        raise template_error(kit.name, exc, template_file=filename) from exc
    return template, variable


def with_text(kit: Kit, overrides: Mapping[str, str]) -> Kit:
    """The kit with the period's text blocks in place of its template files."""
    if not overrides:
        return kit
    swapped: dict[int, Element] = {}
    for _page, el in _block_elements(kit):
        name = str(el.template_file)
        if name in overrides:
            template, variable = _compile(kit, overrides[name], name)
            swapped[id(el)] = dataclasses.replace(el, template=template, variable=variable)
    return dataclasses.replace(
        kit, pages=tuple(tuple(swapped.get(id(el), el) for el in p) for p in kit.pages)
    )


# --- the period's row and its history ----------------------------------------------------------------


def _row(session: Session, campaign: Campaign, period: str) -> PeriodContent | None:
    return session.scalar(
        select(PeriodContent).where(PeriodContent.campaign_id == campaign.id, PeriodContent.period == period)
    )


def _row_for_change(session: Session, campaign: Campaign, period: str) -> PeriodContent:
    if campaign.state in ("cancelled", "finished"):
        raise StateError(_("campaign {name!r} is {state}", name=campaign.name, state=campaign.state))
    row = _row(session, campaign, period)
    if row is None:
        row = PeriodContent(campaign_id=campaign.id, period=period, blocks={}, state="draft")
        session.add(row)
        session.flush()
    return row


def _log(
    session: Session, campaign: Campaign, period: str, actor: audit.Actor, what: str, detail: str
) -> None:
    session.add(
        ContentChange(
            campaign_id=campaign.id,
            period=period,
            account_id=actor.account_id,
            username=actor.username,
            at=utcnow(),
            what=what,
            detail=detail,
        )
    )
    audit.record(
        session=session,
        actor=actor,
        action=f"campaign.content.{what.partition(':')[0]}",
        object_type="campaign",
        object_id=campaign.id,
        detail=f"{period} {what}: {detail}"[:500],
    )


def _changed(
    session: Session, campaign: Campaign, row: PeriodContent, actor: audit.Actor, what: str, detail: str
) -> None:
    """Marks the content changed by `actor`: back to draft, the last change is hers."""
    row.state = "draft"
    row.changed_by_id = actor.account_id
    row.changed_by = actor.username
    row.changed_at = utcnow()
    _log(session, campaign, row.period, actor, what, detail)
    session.flush()


def changes(*, session: Session, campaign: Campaign, period: str) -> Sequence[ContentChange]:
    """Who changed what in the period's content, newest first."""
    return session.scalars(
        select(ContentChange)
        .where(ContentChange.campaign_id == campaign.id, ContentChange.period == _quarter(period))
        .order_by(ContentChange.id.desc())
        .limit(100)
    ).all()


def text_digest(*, session: Session, campaign_id: int, period: str | None) -> str | None:
    """A digest of the period's own text blocks for the approval digest, or None when it has none."""
    if period is None:
        return None
    blocks = session.scalar(
        select(PeriodContent.blocks).where(
            PeriodContent.campaign_id == campaign_id, PeriodContent.period == period
        )
    )
    if not blocks:
        return None
    text = json.dumps(blocks, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def period_kit(*, session: Session, campaign: Campaign, period: str, kit: Kit) -> Kit:
    """The kit with the period's text blocks (what the proof shows and the run prints or sends)."""
    if kit.channel == "sms":
        row = _row(session, campaign, period)
        return with_sms_text(kit, (row.blocks or {}).get(kit.sms_where) if row is not None else None)
    if kit.channel != "letter":
        return kit
    row = _row(session, campaign, period)
    return with_text(kit, row.blocks if row is not None else {})


def _booked(session: Session, campaign: Campaign, period: str) -> Kit:
    kit = _kit(campaign)
    if kit.channel != "letter":
        return kit
    booked = offers.bookings(session=session, campaign_id=campaign.id, period=period)
    return with_artwork(kit, {b.slot: offers.artwork_file(b) for b in booked})


def content_kit(*, session: Session, campaign: Campaign, period: str) -> Kit:
    """The kit as the period prints: its booked artwork in the slots and its own text blocks."""
    quarter = _quarter(period)
    kit = _booked(session, campaign, quarter)
    return period_kit(session=session, campaign=campaign, period=quarter, kit=kit)


def save_text(
    *, session: Session, campaign: Campaign, period: str, blocks: Mapping[str, str], actor: audit.Actor
) -> list[str]:
    """Stores the period's text blocks (those equal to the kit's are dropped) after the kit's checks.

    Returns the names of the blocks that changed. InputError names the block and the problem: a template
    error with its line, or what preflight finds (text running out of its box, characters no font has).
    """
    quarter = _quarter(period)
    kit = _kit(campaign)
    known = {b.name: b for b in text_blocks(kit, {})}
    row = _row_for_change(session, campaign, quarter)
    wanted = dict(row.blocks or {})
    changed: list[str] = []
    for name, raw in blocks.items():
        block = known.get(name)
        if block is None:
            raise InputError(_("the letter has no text block {name!r}", name=name))
        text = raw.replace("\r\n", "\n").rstrip("\n")
        if len(text) > MAX_BLOCK_TEXT:
            raise InputError(_("text block {name}: at most {n} characters", name=name, n=MAX_BLOCK_TEXT))
        if not text.strip():
            raise InputError(_("text block {name} is empty", name=name))
        before = wanted.get(name, block.kit_text)
        if text == before:
            continue
        if text == block.kit_text:
            wanted.pop(name, None)
        else:
            wanted[name] = text
        changed.append(name)
    if not changed:
        return []
    booked = _booked(session, campaign, quarter)
    try:
        trial = with_text(booked, wanted)
    except KitError as exc:
        raise InputError(str(exc)) from exc
    # Only what the new text brings: the kit's own state is the kit's business (and was checked on load).
    before_problems = set(check(with_text(booked, row.blocks or {})))
    where = {el.where: str(el.template_file) for _page, el in _block_elements(trial)}
    problems = [
        next((_("text block {name}: {problem}", name=n, problem=p) for w, n in where.items() if w in p), p)
        for p in check(trial)
        if p not in before_problems
    ]
    if problems:
        raise InputError(_("the text cannot be printed:") + "\n  " + "\n  ".join(problems))
    row.blocks = wanted
    for name in changed:
        _changed(session, campaign, row, actor, f"text:{name}", _("text block {name} rewritten", name=name))
    return changed


# --- the SMS text of a period --------------------------------------------------------------------------
# An SMS campaign's period text is kept like a letter's text block: under the kit's template file name in
# the period's blocks, so the approval digest covers it and a change sends the period back to draft.


def with_sms_text(kit: Kit, text: str | None) -> Kit:
    """An SMS kit with the period's text in place of its template file (the kit itself without one)."""
    if kit.channel != "sms" or text is None:
        return kit
    template, _variable = _compile(kit, text, kit.sms_where)
    return dataclasses.replace(kit, sms_template=template)


def sms_text(*, session: Session, campaign: Campaign, period: str) -> tuple[str, bool]:
    """The period's SMS text, and whether it is the period's own (False: the kit's)."""
    kit = _kit(campaign)
    row = _row(session, campaign, _quarter(period))
    own = (row.blocks or {}).get(kit.sms_where) if row is not None else None
    return (own, True) if own is not None else (_kit_text(kit, kit.sms_where), False)


def save_sms_text(
    *, session: Session, campaign: Campaign, period: str, text: str, actor: audit.Actor
) -> bool:
    """Stores the period's SMS text after the kit's checks (a template error with its line, a sample message
    over the kit's maximum); True if it changed. InputError says what is wrong."""
    quarter = _quarter(period)
    kit = _kit(campaign)
    if kit.channel != "sms" or not kit.sms_where:
        raise InputError(_("campaign {name} does not send SMS", name=campaign.name))
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise InputError(_("the SMS text is empty"))
    if len(text) > MAX_BLOCK_TEXT:
        raise InputError(_("text block {name}: at most {n} characters", name=kit.sms_where, n=MAX_BLOCK_TEXT))
    row = _row_for_change(session, campaign, quarter)
    wanted = dict(row.blocks or {})
    kit_text = _kit_text(kit, kit.sms_where).strip()
    if text == wanted.get(kit.sms_where, kit_text):
        return False
    try:
        trial = with_sms_text(kit, text)
    except KitError as exc:
        raise InputError(str(exc)) from exc
    problems = check(trial)
    if problems:
        raise InputError(_("the text cannot be sent:") + "\n  " + "\n  ".join(problems))
    if text == kit_text:
        wanted.pop(kit.sms_where, None)
    else:
        wanted[kit.sms_where] = text
    row.blocks = wanted
    _changed(session, campaign, row, actor, f"text:{kit.sms_where}", _("the SMS text rewritten"))
    return True


# --- ad slots and their artwork ------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotView:
    """One ad slot of the period: where it is, what artwork it prints (by digest), and whose offer."""

    name: str
    label: str
    side: str
    w: float
    h: float
    artwork: str
    merchant: str | None
    offer_text: str | None
    valid_from: date | None
    valid_until: date | None
    fee_fen: int


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _keep_artwork(session: Session, data: bytes, name: str) -> str:
    sha = hashlib.sha256(data).hexdigest()
    if session.get(ArtworkVersion, sha) is None:
        session.add(ArtworkVersion(sha256=sha, name=name[:200], data=data, created_at=utcnow()))
        session.flush()
    return sha


def slots(*, session: Session, campaign: Campaign, period: str) -> list[SlotView]:
    """Every ad slot of the kit for the period: booked artwork, or the union's own from the kit."""
    if campaign.channel != "letter":
        return []
    kit = _kit(campaign)
    by_name = {s.name: s for s in slots_of(kit)}
    out = []
    for line in offers.slot_lines(session=session, campaign=campaign, period=_quarter(period)):
        slot = by_name[line.slot]
        out.append(
            SlotView(
                name=line.slot,
                label=line.label,
                side=line.side,
                w=slot.w,
                h=slot.h,
                artwork=line.artwork_sha256 or _file_sha(slot.fallback),
                merchant=line.merchant,
                offer_text=line.offer_text,
                valid_from=line.valid_from,
                valid_until=line.valid_until,
                fee_fen=line.fee_fen,
            )
        )
    return out


def replace_artwork(
    *,
    session: Session,
    campaign: Campaign,
    period: str,
    slot: str,
    artwork: bytes,
    artwork_name: str,
    merchant: Organisation,
    offer_text: str,
    valid_from: date,
    valid_until: date,
    fee_fen: int,
    actor: audit.Actor,
) -> None:
    """Puts new artwork in a slot for the period: a booking (outreach.offers), which runs the kit's preflight
    on it (300 dpi, CMYK, zones) and refuses it with the reasons; the change is the actor's."""
    quarter = _quarter(period)
    row = _row_for_change(session, campaign, quarter)
    booking = offers.book(
        session=session,
        campaign=campaign,
        period=quarter,
        slot=slot,
        merchant=merchant,
        artwork=artwork,
        artwork_name=artwork_name,
        offer_text=offer_text,
        valid_from=valid_from,
        valid_until=valid_until,
        fee_fen=fee_fen,
        replace=True,
    )
    _keep_artwork(session, artwork, booking.artwork_name)
    _changed(
        session,
        campaign,
        row,
        actor,
        f"artwork:{booking.slot}",
        _("new artwork {file} ({merchant})", file=booking.artwork_name, merchant=merchant.name),
    )


def artwork_preview(*, session: Session, campaign: Campaign, sha256: str) -> bytes:
    """A small RGB PNG of artwork the campaign's slots held (booked, kept, or the kit's own), by digest."""
    folder = get_settings().data_dir / "artwork-previews"
    cached = folder / f"{sha256}.png"
    if cached.is_file():
        return cached.read_bytes()
    data: bytes | None = None
    kept = session.get(ArtworkVersion, sha256)
    if kept is not None:
        data = kept.data
    elif campaign.channel == "letter":
        for slot in slots_of(_kit(campaign)):
            if _file_sha(slot.fallback) == sha256:
                data = slot.fallback.read_bytes()
                break
    if data is None:
        raise NotFound(_("no artwork {sha} in campaign {name}", sha=sha256[:12], name=campaign.name))
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(_("the artwork cannot be read ({error})", error=type(exc).__name__)) from exc
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".preview-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(out.getvalue())
    os.replace(tmp, cached)
    return out.getvalue()


# --- review: submit, send back, approve (four eyes) ------------------------------------------------------


@dataclass(frozen=True)
class Review:
    """Where the period's content stands in its review."""

    state: str
    changed_by: str | None
    changed_by_id: int | None
    changed_at: object
    submitted_by: str | None
    reviewed_by: str | None
    reviewed_at: object
    comment: str | None

    def may_approve(self, account_id: int | None) -> bool:
        """Whether this account may approve it now (submitted, and not her own last change)."""
        return self.state == "submitted" and not self.own_change(account_id)

    def own_change(self, account_id: int | None) -> bool:
        """Whether this account made the last change of the content (four eyes)."""
        return account_id is not None and self.changed_by_id == account_id


def review(*, session: Session, campaign: Campaign, period: str) -> Review:
    """The review state of the period (a period nobody touched yet is a draft)."""
    row = _row(session, campaign, _quarter(period))
    if row is None:
        return Review("draft", None, None, None, None, None, None, None)
    return Review(
        row.state,
        row.changed_by,
        row.changed_by_id,
        row.changed_at,
        row.submitted_by,
        row.reviewed_by,
        row.reviewed_at,
        row.comment,
    )


def submit(*, session: Session, campaign: Campaign, period: str, actor: audit.Actor) -> PeriodContent:
    """Submits the period's content for approval."""
    quarter = _quarter(period)
    row = _row_for_change(session, campaign, quarter)
    if row.state == "submitted":
        raise StateError(
            _(
                "the content of {name} for {period} waits for approval already",
                name=campaign.name,
                period=quarter,
            )
        )
    if row.state == "approved":
        raise StateError(
            _(
                "the content of {name} for {period} is approved; change it first",
                name=campaign.name,
                period=quarter,
            )
        )
    # What is submitted must load and pass preflight now, with its text and artwork.
    problems = check(content_kit(session=session, campaign=campaign, period=quarter))
    if problems:
        raise InputError(_("the content cannot be printed:") + "\n  " + "\n  ".join(problems))
    row.state = "submitted"
    row.submitted_by = actor.username
    row.submitted_at = utcnow()
    _log(session, campaign, quarter, actor, "submitted", _("submitted for approval"))
    session.flush()
    return row


def send_back(
    *, session: Session, campaign: Campaign, period: str, actor: audit.Actor, comment: str
) -> PeriodContent:
    """Sends the submitted content back to the planners with the approver's comment (required)."""
    quarter = _quarter(period)
    text = comment.replace("\r\n", "\n").strip()
    if not text:
        raise InputError(_("say what should change: a comment is required to send the content back"))
    if len(text) > MAX_COMMENT:
        raise InputError(_("the comment may have at most {n} characters", n=MAX_COMMENT))
    row = _row(session, campaign, quarter)
    if row is None or row.state != "submitted":
        raise StateError(
            _(
                "the content of {name} for {period} is not waiting for approval",
                name=campaign.name,
                period=quarter,
            )
        )
    row.state = "returned"
    row.reviewed_by_id = actor.account_id
    row.reviewed_by = actor.username
    row.reviewed_at = utcnow()
    row.comment = text
    _log(session, campaign, quarter, actor, "returned", text)
    session.flush()
    return row


def _snapshot(session: Session, campaign: Campaign, period: str) -> dict[str, object]:
    kit = _kit(campaign)
    row = _row(session, campaign, period)
    blocks = {b.name: b.text for b in text_blocks(kit, row.blocks if row is not None else {})}
    return {
        "kit": kit.digest,
        "blocks": blocks,
        "slots": {s.name: s.artwork for s in slots(session=session, campaign=campaign, period=period)},
    }


def approve(
    *, session: Session, campaign: Campaign, period: str, actor: audit.Actor, force: bool = False
) -> PeriodContent:
    """Approves the submitted content of the period; refused to the account that made its last change."""
    quarter = _quarter(period)
    row = _row(session, campaign, quarter)
    if row is None or row.state != "submitted":
        raise StateError(
            _(
                "the content of {name} for {period} is not waiting for approval",
                name=campaign.name,
                period=quarter,
            )
        )
    if actor.account_id is not None and row.changed_by_id == actor.account_id:
        raise Forbidden(
            _(
                "you made the last change to this content ({when}); four eyes: another colleague must "
                "approve it",
                when=row.changed_at.isoformat(timespec="minutes") if row.changed_at else "",
            )
        )
    campaigns.approve(session=session, campaign=campaign, period=quarter, force=force)
    row.state = "approved"
    row.reviewed_by_id = actor.account_id
    row.reviewed_by = actor.username
    row.reviewed_at = utcnow()
    row.comment = None
    row.approved_snapshot = _snapshot(session, campaign, quarter)
    _log(session, campaign, quarter, actor, "approved", _("approved"))
    session.flush()
    return row


def waiting(*, session: Session) -> list[tuple[Campaign, PeriodContent]]:
    """Every period whose content waits for approval, oldest submission first."""
    rows = session.execute(
        select(Campaign, PeriodContent)
        .join(PeriodContent, PeriodContent.campaign_id == Campaign.id)
        .where(PeriodContent.state == "submitted")
        .order_by(PeriodContent.submitted_at, PeriodContent.id)
    ).all()
    return [(c, p) for c, p in rows]


def recent_reviews(*, session: Session, limit: int = 20) -> list[tuple[Campaign, PeriodContent]]:
    """Periods approved or sent back lately, newest first."""
    rows = session.execute(
        select(Campaign, PeriodContent)
        .join(PeriodContent, PeriodContent.campaign_id == Campaign.id)
        .where(PeriodContent.state.in_(("approved", "returned")))
        .order_by(PeriodContent.reviewed_at.desc(), PeriodContent.id.desc())
        .limit(limit)
    ).all()
    return [(c, p) for c, p in rows]


def periods(*, session: Session, campaign: Campaign) -> Sequence[PeriodContent]:
    """The campaign's periods that have content of their own, latest first."""
    return session.scalars(
        select(PeriodContent)
        .where(PeriodContent.campaign_id == campaign.id)
        .order_by(PeriodContent.period.desc())
    ).all()


# --- what changed since the last approval ------------------------------------------------------------


@dataclass(frozen=True)
class DiffRow:
    """One row of a side-by-side text diff: old line number and text, new line number and text."""

    kind: str  # equal | delete | insert | replace
    old_no: int | None
    old: str
    new_no: int | None
    new: str


@dataclass(frozen=True)
class BlockDiff:
    """A text block's changes against the base."""

    name: str
    rows: tuple[DiffRow, ...]


@dataclass(frozen=True)
class ArtworkDiff:
    """A slot whose artwork changed: the old and the new, by digest."""

    slot: str
    label: str
    old: str | None
    new: str


@dataclass(frozen=True)
class Changes:
    """What changed since the base: the last approved content of this period or an earlier one, or the kit."""

    base_period: str | None
    texts: tuple[BlockDiff, ...]
    artwork: tuple[ArtworkDiff, ...]


def _diff_rows(old: str, new: str, context: int = 1) -> tuple[DiffRow, ...]:
    a, b = old.splitlines(), new.splitlines()
    rows: list[DiffRow] = []
    for group in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_grouped_opcodes(context):
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [
                    DiffRow("equal", i1 + k + 1, a[i1 + k], j1 + k + 1, b[j1 + k]) for k in range(i2 - i1)
                ]
                continue
            for k in range(max(i2 - i1, j2 - j1)):
                o = i1 + k if i1 + k < i2 else None
                n = j1 + k if j1 + k < j2 else None
                rows.append(
                    DiffRow(
                        tag,
                        o + 1 if o is not None else None,
                        a[o] if o is not None else "",
                        n + 1 if n is not None else None,
                        b[n] if n is not None else "",
                    )
                )
    return tuple(rows)


def changes_since_approval(*, session: Session, campaign: Campaign, period: str) -> Changes:
    """The text diff and the artwork that changed since the last approved content (this period's or the
    latest earlier one's); with none approved yet, against the kit as shipped."""
    quarter = _quarter(period)
    own = _row(session, campaign, quarter)
    # Content approved as it is: what that approval changed, against the approval before it.
    latest = (
        PeriodContent.period < quarter
        if own is not None and own.state == "approved"
        else PeriodContent.period <= quarter
    )
    base_row = session.scalar(
        select(PeriodContent)
        .where(
            PeriodContent.campaign_id == campaign.id,
            latest,
            PeriodContent.approved_snapshot.is_not(None),
        )
        .order_by(PeriodContent.period.desc())
        .limit(1)
    )
    now = _snapshot(session, campaign, quarter)
    kit = _kit(campaign)
    if base_row is not None and base_row.approved_snapshot is not None:
        base = base_row.approved_snapshot
        base_blocks: dict[str, str] = dict(base.get("blocks") or {})
        base_slots: dict[str, str] = dict(base.get("slots") or {})
        base_period: str | None = base_row.period
    else:
        base_blocks = {b.name: b.kit_text for b in text_blocks(kit, {})}
        base_slots = (
            {s.name: _file_sha(s.fallback) for s in slots_of(kit)} if campaign.channel == "letter" else {}
        )
        base_period = None
    texts = []
    now_blocks = now["blocks"]
    assert isinstance(now_blocks, dict)
    for name, text in now_blocks.items():
        old = base_blocks.get(name, "")
        if old != text:
            texts.append(BlockDiff(name, _diff_rows(old, text)))
    art = []
    labels = {s.name: s.label for s in slots_of(kit)} if campaign.channel == "letter" else {}
    now_slots = now["slots"]
    assert isinstance(now_slots, dict)
    for name, sha in now_slots.items():
        if base_slots.get(name) != sha:
            art.append(
                ArtworkDiff(str(name), labels.get(str(name), str(name)), base_slots.get(str(name)), str(sha))
            )
    return Changes(base_period=base_period, texts=tuple(texts), artwork=tuple(art))


# --- the proof -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProofPiece:
    """One sample recipient's pages as PNG file names: envelope front and back, then the letter's pages."""

    name: str
    unit_name: str
    address: str
    why: str
    envelope: tuple[str, ...]
    letter: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class Proof:
    """The proof of a period's content: its digest (the cache key and the PNGs' folder) and its pieces."""

    digest: str
    pieces: tuple[ProofPiece, ...]


def proof_recipients(
    *, session: Session, campaign: Campaign, n: int = PROOF_PIECES
) -> list[tuple[Recipient, str]]:
    """n recipients of the audience for the proof: the longest name, the longest address, then the first
    few (by worker id); with the reason each was chosen."""
    audience = session.get(Audience, campaign.audience_id)
    assert audience is not None  # a foreign key guarantees it
    source = audiences.recipient_select(expression=audience.expression, channel="letter").subquery()
    picks: list[tuple[Row[Any], str]] = []
    seen: set[int] = set()
    for order, why in (
        (func.length(source.c.name).desc(), _("longest name")),
        (func.length(func.coalesce(source.c.address, "")).desc(), _("longest address")),
    ):
        row = session.execute(select(source).order_by(order, source.c.worker_id).limit(1)).first()
        if row is not None and row.worker_id not in seen:
            seen.add(row.worker_id)
            picks.append((row, why))
    for row in session.execute(select(source).order_by(source.c.worker_id).limit(n + 2)):
        if len(picks) >= n:
            break
        if row.worker_id not in seen:
            seen.add(row.worker_id)
            picks.append((row, _("sample")))
    out = []
    for i, (row, why) in enumerate(picks, start=1):
        out.append(
            (
                Recipient(
                    number=f"P{campaign.id:06d}-{i:06d}",
                    seq=i,
                    name=row.name,
                    gender=row.gender,
                    unit_name=row.unit_name,
                    address=row.address,
                    postcode=row.postcode,
                    township=row.township,
                    code=f"PR00F{i:05d}",
                ),
                why,
            )
        )
    return out


def _pdf_pages(out: Path, *files: tuple[Path, str]) -> list[list[Path]]:
    """PNGs of every page of each (pdf, prefix), rasterised by poppler's pdftoppm, the files side by side."""
    if shutil.which("pdftoppm") is None:
        raise InputError(_("pdftoppm not found: install poppler-utils for PNG previews"))
    # A fixed program found on PATH, given our own file names.
    running = [
        subprocess.Popen(  # noqa: S603
            ["pdftoppm", "-png", "-r", str(PROOF_DPI), str(pdf), str(out / prefix)],  # noqa: S607
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for pdf, prefix in files
    ]
    for proc in running:
        _out, err = proc.communicate(timeout=120)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, stderr=err)
    return [sorted(out.glob(f"{prefix}-*.png")) for _pdf, prefix in files]


def proof_dir(digest: str) -> Path:
    """Where the PNGs of a proof are kept (by the proof's digest)."""
    return get_settings().data_dir / "proofs" / digest


def proof(*, session: Session, campaign: Campaign, period: str) -> Proof:
    """The proof of the period's content (text, artwork, sample recipients), rendered by the renderer and
    rasterised once: the PNGs are cached under the digest of everything that goes into them."""
    quarter = _quarter(period)
    if campaign.channel != "letter":
        raise InputError(_("campaign {name} sends SMS: its proof is the SMS text", name=campaign.name))
    kit = content_kit(session=session, campaign=campaign, period=quarter)
    chosen = proof_recipients(session=session, campaign=campaign)
    if not chosen:
        raise InputError(
            _("the audience of {name} reaches nobody by letter: nothing to proof", name=campaign.name)
        )
    row = _row(session, campaign, quarter)
    key = {
        "kit": kit.digest,
        "options": repr(KitOptions.from_settings(get_settings())),
        "blocks": row.blocks if row is not None else {},
        "booked": offers.bookings_digest(session=session, campaign_id=campaign.id, period=quarter),
        "period": quarter,
        "campaign": campaign.name,
        "recipients": [dataclasses.astuple(r) for r, _why in chosen],
        "dpi": PROOF_DPI,
    }
    digest = hashlib.sha256(
        json.dumps(key, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()
    folder = proof_dir(digest)
    index = folder / "proof.json"
    if not index.is_file():
        _render_proof(kit, chosen, folder, {"campaign": campaign.name, "period": quarter})
    data = json.loads(index.read_text(encoding="utf-8"))
    return Proof(
        digest=digest,
        pieces=tuple(
            ProofPiece(**{**p, "envelope": tuple(p["envelope"]), "letter": tuple(p["letter"])}) for p in data
        ),
    )


def _render_proof(
    kit: Kit, chosen: list[tuple[Recipient, str]], folder: Path, context: Mapping[str, object]
) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".proof-"))
    try:
        result = render_letters(
            kit,
            [r for r, _why in chosen],
            envelopes=tmp / "envelopes.pdf",
            letters=tmp / "letters.pdf",
            context=context,
        )
        envelope_pngs, letter_pngs = (
            _pdf_pages(tmp, (tmp / "envelopes.pdf", "envelope"), (tmp / "letters.pdf", "letter"))
            if result.rendered
            else ([], [])
        )
        errors = {f.number: f.error for f in result.failed}
        pieces = []
        e = lt = 0
        for r, why in chosen:
            env_pages: list[str] = []
            let_pages: list[str] = []
            if r.number not in errors:
                env_pages = [p.name for p in envelope_pngs[e : e + kit.envelope_pages]]
                let_pages = [p.name for p in letter_pngs[lt : lt + kit.letter_pages]]
                e += kit.envelope_pages
                lt += kit.letter_pages
            pieces.append(
                {
                    "name": r.name,
                    "unit_name": r.unit_name,
                    "address": r.address or "",
                    "why": why,
                    "envelope": env_pages,
                    "letter": let_pages,
                    "error": errors.get(r.number),
                }
            )
        for pdf in tmp.glob("*.pdf"):
            pdf.unlink()
        (tmp / "proof.json").write_text(json.dumps(pieces, ensure_ascii=False), encoding="utf-8")
        try:
            os.rename(tmp, folder)  # atomic; a parallel request that won keeps its own identical copy
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def proof_png(digest: str, name: str) -> Path:
    """A PNG of a rendered proof; NotFound for anything else."""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise NotFound(_("no such proof"))
    if not name.endswith(".png") or "/" in name or "\\" in name or name.startswith("."):
        raise NotFound(_("no such proof"))
    path = proof_dir(digest) / name
    if not path.is_file():
        raise NotFound(_("no such proof"))
    return path


def record_refusal(
    *, session: Session, campaign: Campaign, period: str, actor: audit.Actor, reason: str
) -> None:
    """Writes a refused approval to the audit log (in the caller's transaction)."""
    audit.record(
        session=session,
        actor=actor,
        action="campaign.approve_refused",
        object_type="campaign",
        object_id=campaign.id,
        detail=f"{_quarter(period)}: {reason}"[:500],
    )
