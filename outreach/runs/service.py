"""Run service: start a period's run (freeze recipients, reserve budget), render batches, finish, resume.

The checkpoint of a run is each piece's own recorded state, never a cursor: a batch whose pieces are all
rendered is done; a retried or redelivered batch renders the same bytes again and charges nothing twice
(ledger entries are keyed by run, piece and kind).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from sqlalchemy import Select, and_, func, insert, literal, null, select, update
from sqlalchemy.orm import Session

from audiences import service as audiences
from audiences.models import Audience
from outreach.accounts import webhooks
from outreach.campaigns import content as campaign_content
from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.channels import Channel, PieceResult, Receipt, charged_states, get_channel
from outreach.channels.quiet_hours import SEND_UNTIL
from outreach.db import utcnow
from outreach.errors import InputError, NotFound, StateError
from outreach.i18n import _
from outreach.ledger import service as ledger
from outreach.offers import codes as offer_codes
from outreach.offers import service as offers
from outreach.periods import parse_quarter
from outreach.render import Kit, KitOptions, Recipient, load_kit_cached
from outreach.runs import sms
from outreach.runs.batchfiles import batch_folder, batch_range, write_batch_files
from outreach.runs.models import Batch, Piece, Run, piece_number
from outreach.runs.states import run_state_label
from outreach.settings import get_settings
from outreach.storage import Storage


def get(*, session: Session, run_id: int) -> Run:
    """Gets a run by id; NotFound if there is none."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run with id {run_id}")
    return run


def find(*, session: Session, campaign: Campaign, period: str) -> Run | None:
    """The campaign's run for a period, if there is one."""
    return session.scalar(select(Run).where(Run.campaign_id == campaign.id, Run.period == period))


def start(*, session: Session, campaign: Campaign, period: str, today: date | None = None) -> Run:
    """Starts the campaign's run for `period`: freezes the recipients and reserves the budget.

    Starting again returns the existing run. If the period's content is not approved, the run is recorded as
    'waiting' with the reason, and starts when approved. If the budget would be overspent, BudgetExceeded is
    raised and nothing is stored.
    """
    period = str(parse_quarter(period))
    # Two starts of one campaign (the schedule and a planner, say) take turns here: the second one then finds
    # the first one's run instead of failing on the one-run-per-period constraint.
    session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
    run = find(session=session, campaign=campaign, period=period)
    if run is not None and run.state != "waiting":
        return run
    problem = campaigns.approval_problem(session=session, campaign=campaign, period=period)
    if problem is not None:
        if run is None:
            run = Run(campaign_id=campaign.id, period=period, state="waiting", batch_size=campaign.batch_size)
            session.add(run)
        run.note = problem
        session.flush()
        return run
    if run is None:
        run = Run(campaign_id=campaign.id, period=period, batch_size=campaign.batch_size)
        session.add(run)
    run.state = "rendering"
    run.note = None
    run.batch_size = batch_size_for(campaign)
    kit = load_kit_cached(campaign.kit, KitOptions.from_settings(get_settings()))
    run.content_hash = kit.digest
    run.started_at = utcnow()
    session.flush()
    run.piece_count = freeze(session=session, run=run, campaign=campaign, today=today)
    if run.piece_count == 0:
        raise InputError(f"campaign {campaign.name!r} reaches nobody on {campaign.channel} for {period}")
    ledger.reserve(session=session, run_id=run.id, pieces=run.piece_count, parts_per_piece=max_parts(kit))
    # A redemption code on every letter, and the period's ad fees booked as income (outreach.offers).
    offers.on_frozen(session=session, run=run, campaign=campaign)
    campaign.state = "active"
    session.flush()
    return run


def start_by_hand(
    *, session: Session, campaign: Campaign, period: str, today: date | None = None
) -> tuple[Run, bool]:
    """Starts a run as a planner does; (run, True) if this call started it, (the existing run, False) if one
    had started already. An unapproved period is refused (StateError) and nothing is stored: unlike the
    schedule, a person gets the reason now instead of a waiting run that lingers."""
    period = str(parse_quarter(period))
    session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
    run = find(session=session, campaign=campaign, period=period)
    if run is not None and run.state != "waiting":
        return run, False
    problem = campaigns.approval_problem(session=session, campaign=campaign, period=period)
    if problem is not None:
        raise StateError(problem)
    return start(session=session, campaign=campaign, period=period, today=today), True


def reach_channel(campaign: Campaign) -> Literal["letter", "sms"]:
    """The channel audiences count the campaign's recipients on: the campaign's own (one word for both)."""
    return get_channel(campaign.channel).name


def batch_size_for(campaign: Campaign) -> int:
    """Pieces per batch: what the campaign asks, as far as its channel takes (a gateway upload's limit)."""
    return get_channel(campaign.channel).batch_size(campaign.batch_size)


def max_parts(kit: Kit) -> int:
    """Cost units one piece of this kit can take at most (what a reservation must cover)."""
    return get_channel(kit.channel).max_units(kit)


def freeze(*, session: Session, run: Run, campaign: Campaign, today: date | None = None) -> int:
    """Creates one piece per reachable recipient, in presort order; returns how many."""
    expression = session.scalar(select(Audience.expression).where(Audience.id == campaign.audience_id))
    assert expression is not None
    channel = get_channel(campaign.channel)
    source = audiences.recipient_select(expression=expression, channel=channel.name, today=today).subquery()
    # Presort: letters to one postcode, then township, then unit travel together (one unit's letters in one
    # bundle); name and worker id make the order total, so the same recipients always get the same numbers.
    seq = func.row_number().over(
        order_by=(source.c.postcode, source.c.township, source.c.unit_id, source.c.name, source.c.worker_id)
    )
    mobile = source.c.mobile if channel.keeps_mobile else null()
    rows: Select[tuple[object, ...]] = select(
        literal(run.id),
        seq,
        source.c.worker_id,
        source.c.name,
        source.c.gender,
        source.c.unit_name,
        source.c.township,
        source.c.address,
        source.c.postcode,
        mobile,
        literal("pending"),
    )
    columns = ["run_id", "seq", "worker_id", "name", "gender", "unit_name", "township", "address", "postcode"]
    session.execute(insert(Piece).from_select([*columns, "mobile", "state"], rows))
    return session.scalar(select(func.count()).select_from(Piece).where(Piece.run_id == run.id)) or 0


def batch_pieces(*, session: Session, run: Run, batch_seq: int) -> Sequence[Piece]:
    """The pieces of one batch in sequence order."""
    first, last = batch_range(run, batch_seq)
    return session.scalars(
        select(Piece).where(Piece.run_id == run.id, Piece.seq.between(first, last)).order_by(Piece.seq)
    ).all()


def recipient(piece: Piece, *, code: str | None = None) -> Recipient:
    """What the renderer needs of a piece (and its redemption code, if it has one)."""
    return Recipient(
        number=piece_number(piece.run_id, piece.seq),
        seq=piece.seq,
        name=piece.name,
        gender=piece.gender,
        unit_name=piece.unit_name,
        address=piece.address,
        postcode=piece.postcode,
        township=piece.township,
        mobile=piece.mobile,
        code=code,
    )


def render_context(campaign: Campaign, run: Run) -> dict[str, object]:
    """Campaign-level variables the kit's templates see."""
    return {"campaign": campaign.name, "period": run.period}


@dataclass
class BatchOutcome:
    """What rendering one batch did."""

    run_id: int
    batch_seq: int
    rendered: int = 0
    failed: int = 0
    charged: int = 0
    skipped: bool = False
    errors: list[str] = field(default_factory=list)


def batch_content(
    *, session: Session, campaign: Campaign, run: Run, pieces: Sequence[Piece]
) -> tuple[Kit, dict[int, str], dict[str, object]]:
    """What a batch of pieces is rendered from: the approved kit with the period's text and booked ad artwork,
    each letter's redemption code by piece seq, and the run's context. The one place that knows, so that a
    re-rendering (a resumed run, a test's reference) makes the same bytes."""
    kit = load_kit_cached(campaign.kit, KitOptions.from_settings(get_settings()))
    if kit.digest != run.content_hash:
        raise StateError(
            _(
                "kit {kit} changed since run {run} started; restore it to render the approved content",
                kit=campaign.kit,
                run=run.id,
            )
        )
    kit = offers.booked_kit(session=session, run=run, kit=kit)
    kit = campaign_content.period_kit(session=session, campaign=campaign, period=run.period, kit=kit)
    codes = (
        offer_codes.codes_of(session=session, run_id=run.id, first_seq=pieces[0].seq, last_seq=pieces[-1].seq)
        if pieces
        else {}
    )
    return kit, codes, render_context(campaign, run)


def render_batch(*, session: Session, run_id: int, batch_seq: int, storage: Storage) -> BatchOutcome:
    """Renders one batch to storage, records each piece's state and charges it; safe to run twice."""
    run = get(session=session, run_id=run_id)
    outcome = BatchOutcome(run_id=run_id, batch_seq=batch_seq)
    if run.state != "rendering":
        outcome.skipped = True
        return outcome
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    live = getattr(get_channel(campaign.channel), "sends_live", False)
    if live:
        # One worker at a time sends a batch (a redelivered task waits here, then finds the pieces recorded).
        first, last = batch_range(run, batch_seq)
        session.execute(
            select(Piece.id).where(Piece.run_id == run.id, Piece.seq.between(first, last)).with_for_update()
        )
    pieces = batch_pieces(session=session, run=run, batch_seq=batch_seq)
    if all(p.state != "pending" for p in pieces):
        outcome.skipped = True
        return outcome
    kit, codes, context = batch_content(session=session, campaign=campaign, run=run, pieces=pieces)
    channel = get_channel(kit.channel)
    sending = pieces
    gate: sms.Gate | None = None
    if live:
        # Live SMS: only inside the campaign's sending window and under its per-number daily cap.
        gate = sms.gate(session=session, campaign=campaign, pieces=pieces, now=utcnow())
        sending, context[SEND_UNTIL] = gate.send, gate.until
        if not sending:
            sms.settle_batch(session=session, run=run, campaign=campaign, pieces=pieces, gate=gate)
            outcome.skipped = True
            return outcome
    with tempfile.TemporaryDirectory(prefix="outreach-batch-") as tmp:
        output = channel.deliver(
            kit,
            [recipient(p, code=codes.get(p.seq)) for p in sending],
            context=context,
            folder=batch_folder(storage, run, batch_seq),
            workdir=Path(tmp),
        )
    settled = record_results(session=session, run=run, channel=channel, pieces=pieces, results=output.results)
    if gate is not None:
        sms.settle_batch(
            session=session, run=run, campaign=campaign, pieces=pieces, gate=gate, results=output.results
        )
    outcome.charged = settled.charged
    outcome.rendered = settled.delivered
    outcome.failed = settled.failed
    outcome.errors = settled.errors
    # The batch's manifest, ticket and checksums are written here, in parallel across workers, not at the end.
    session.flush()
    write_batch_files(
        session=session,
        run=run,
        campaign=campaign,
        kit=kit,
        batch_seq=batch_seq,
        storage=storage,
        make_zip=get_settings().zip_batches,
        delivered=output.files,
    )
    return outcome


@dataclass
class Settled:
    """What recording a channel's results did: pieces delivered (any state but failed), failed, charged."""

    delivered: int = 0
    failed: int = 0
    charged: int = 0
    refunded: int = 0
    errors: list[str] = field(default_factory=list)


def record_results(
    *, session: Session, run: Run, channel: Channel, pieces: Sequence[Piece], results: Sequence[PieceResult]
) -> Settled:
    """Records a channel's result for each piece and charges the pieces that reached its `charge_on` state.

    Charges are keyed by piece, so recording the same results twice charges nothing twice. Only pending
    pieces take a result: a piece's recorded state is its checkpoint, so a batch delivered again (after a
    crash) never moves a submitted or delivered piece back.
    """
    by_number = {piece_number(p.run_id, p.seq): p for p in pieces}
    unknown = [r.number for r in results if r.number not in by_number]
    if unknown:
        raise StateError(
            _(
                "channel {channel} reported pieces not in the batch: {numbers}",
                channel=channel.name,
                numbers=", ".join(unknown[:5]),
            )
        )
    results = [r for r in results if by_number[r.number].state == "pending"]
    if not results:
        return Settled()
    session.execute(
        update(Piece),
        [
            {
                "id": by_number[r.number].id,
                "state": r.state,
                "error": r.reason,
                "error_code": r.error_code,
                "message_id": r.message_id,
                "pages": r.pages,
                "parts": r.parts,
            }
            for r in results
        ],
    )
    chargeable = charged_states(channel.charge_on)
    charges = [(by_number[r.number].id, r.units) for r in results if r.state in chargeable]
    settled = Settled(
        delivered=sum(1 for r in results if r.state != "failed"),
        failed=sum(1 for r in results if r.state == "failed"),
    )
    settled.charged = ledger.charge_bulk(session=session, run_id=run.id, charges=charges)
    settled.errors = [f"{r.number}: {r.reason}" for r in results if r.state == "failed" and r.reason]
    return settled


def record_receipts(
    *, session: Session, run_id: int, channel: Channel, receipts: Sequence[Receipt]
) -> Settled:
    """Records a live gateway's delivery receipts: delivered, or failed with its code and the charge refunded.

    A receipt for a piece already delivered or failed changes nothing, so a gateway may repeat itself.
    """
    run = get(session=session, run_id=run_id)
    settled = Settled()
    chargeable = charged_states(channel.charge_on)
    for receipt in receipts:
        piece = session.scalar(
            select(Piece).where(Piece.run_id == run.id, Piece.message_id == receipt.message_id)
        )
        if piece is None:
            raise NotFound(
                _("run {run} has no piece with gateway message id {id}", run=run.id, id=receipt.message_id)
            )
        if piece.state in ("delivered", "failed"):
            continue
        was_charged = piece.state in chargeable
        piece.state = receipt.state
        if receipt.state == "delivered":
            settled.delivered += 1
            if not was_charged:
                settled.charged += ledger.charge_bulk(
                    session=session, run_id=run.id, charges=[(piece.id, piece.parts or 1)]
                )
            continue
        piece.error_code = receipt.error_code
        piece.error = receipt.reason or receipt.error_code
        settled.failed += 1
        settled.errors.append(f"{piece.number}: {piece.error}")
        if was_charged and ledger.refund(
            session=session, run_id=run.id, piece_id=piece.id, reason=receipt.error_code or "failed"
        ):
            settled.refunded += 1
    session.flush()
    return settled


def pending_batches(*, session: Session, run: Run) -> list[int]:
    """The batches that still have a pending piece."""
    seqs = session.scalars(
        select(Piece.seq).where(Piece.run_id == run.id, Piece.state == "pending").order_by(Piece.seq)
    )
    return sorted({(s - 1) // run.batch_size + 1 for s in seqs})


def pending_count(*, session: Session, run_id: int) -> int:
    """How many of the run's pieces are not yet rendered or failed."""
    return (
        session.scalar(
            select(func.count()).select_from(Piece).where(Piece.run_id == run_id, Piece.state == "pending")
        )
        or 0
    )


def finish(*, session: Session, run_id: int, storage: Storage) -> Run:
    """Finishes a fully rendered run: every batch recorded, unused budget released, state done. Idempotent."""
    run = get(session=session, run_id=run_id)
    if run.state == "done":
        return run
    if not begin_assembly(session=session, run_id=run_id):
        raise StateError(f"run {run.id} is {run.state}; it can be finished once every piece is rendered")
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    recorded = set(session.scalars(select(Batch.seq).where(Batch.run_id == run.id)))
    for seq in range(1, run.batch_count + 1):
        if seq not in recorded:  # only after a crash between a batch's prints and its files
            write_batch_files(
                session=session,
                run=run,
                campaign=campaign,
                kit=load_kit_cached(campaign.kit, KitOptions.from_settings(get_settings())),
                batch_seq=seq,
                storage=storage,
                make_zip=get_settings().zip_batches,
            )
    ledger.release(session=session, run_id=run.id)
    run.state = "done"
    run.finished_at = utcnow()
    session.flush()
    # Into the outbox in this transaction; sent to the print shop's webhook only once it commits.
    webhooks.run_finished(session=session, run=run, campaign=campaign)
    return run


def begin_assembly(*, session: Session, run_id: int) -> bool:
    """Moves a fully rendered run to 'assembling'; True if it is (now or already) there."""
    done_rendering = and_(Run.id == run_id, Run.state == "rendering")
    session.execute(
        update(Run)
        .where(done_rendering)
        .where(~select(Piece.id).where(Piece.run_id == run_id, Piece.state == "pending").exists())
        .values(state="assembling")
    )
    return session.scalar(select(Run.state).where(Run.id == run_id)) == "assembling"


def cancel(*, session: Session, run_id: int) -> Run:
    """Cancels an unfinished run and releases what its reservation has not used."""
    run = get(session=session, run_id=run_id)
    if run.state == "done":
        raise StateError(_("run {run} is done; a finished run cannot be cancelled", run=run.id))
    run.state = "cancelled"
    run.finished_at = utcnow()
    ledger.release(session=session, run_id=run.id)
    session.flush()
    return run


def recent(*, session: Session, limit: int = 100) -> Sequence[tuple[Run, str]]:
    """The latest runs with their campaign's name, newest first."""
    rows = session.execute(
        select(Run, Campaign.name)
        .join(Campaign, Campaign.id == Run.campaign_id)
        .order_by(Run.id.desc())
        .limit(limit)
    ).all()
    return [(run, str(name)) for run, name in rows]


def startable(*, session: Session) -> list[tuple[Campaign, str]]:
    """Campaigns whose approved period has no run yet (or a waiting one): what a planner can start now."""
    out: list[tuple[Campaign, str]] = []
    for campaign in campaigns.list_all(session=session):
        period = campaign.approved_period
        if period is None or campaign.state not in ("approved", "active"):
            continue
        run = find(session=session, campaign=campaign, period=period)
        if run is None or run.state == "waiting":
            out.append((campaign, period))
    return out


def retry_failed(*, session: Session, run_id: int) -> int:
    """Puts an unfinished run's failed pieces back to pending, so that resuming renders them again; returns
    how many. Failed pieces were never charged; a finished run's batches are final, and a live gateway's
    failures are not sent twice, so both are refused (StateError)."""
    run = get(session=session, run_id=run_id)
    if run.state not in ("rendering", "stalled"):
        raise StateError(
            _(
                "run {run} is {state}; only an unfinished run's failed pieces can be tried again",
                run=run.id,
                state=run_state_label(run.state),
            )
        )
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    if getattr(get_channel(campaign.channel), "sends_live", False):
        raise StateError(_("run {run} sends live SMS: a failed message is not sent twice", run=run.id))
    moved = session.execute(
        update(Piece)
        .where(Piece.run_id == run.id, Piece.state == "failed")
        .values(state="pending", error=None, error_code=None)
    )
    session.flush()
    return int(getattr(moved, "rowcount", 0) or 0)


def batches(*, session: Session, run_id: int) -> Sequence[Batch]:
    """The run's assembled batches in order."""
    return session.scalars(select(Batch).where(Batch.run_id == run_id).order_by(Batch.seq)).all()


@dataclass
class RunStatus:
    """Progress of a run."""

    run: Run
    campaign: str
    total: int
    rendered: int
    failed: int
    pending: int
    batches_total: int
    batches_done: int
    errors: list[str]
    # Live SMS: pieces the gateway took (awaiting their receipt) and those whose receipt said delivered.
    submitted: int = 0
    delivered: int = 0

    @property
    def done(self) -> int:
        """Pieces rendered, submitted, delivered or failed."""
        return self.rendered + self.submitted + self.delivered + self.failed


def status(*, session: Session, run_id: int, max_errors: int = 20) -> RunStatus:
    """Pieces done of total, batches, and the first errors."""
    run = get(session=session, run_id=run_id)
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    counts = dict(
        session.execute(
            select(Piece.state, func.count()).where(Piece.run_id == run.id).group_by(Piece.state)
        ).all()
    )
    errors = session.execute(
        select(Piece.seq, Piece.error)
        .where(Piece.run_id == run.id, Piece.state == "failed")
        .order_by(Piece.seq)
        .limit(max_errors)
    ).all()
    pending = pending_batches(session=session, run=run) if counts.get("pending") else []
    return RunStatus(
        run=run,
        campaign=campaign.name,
        total=run.piece_count,
        rendered=counts.get("rendered", 0),
        failed=counts.get("failed", 0),
        pending=counts.get("pending", 0),
        batches_total=run.batch_count,
        batches_done=run.batch_count - len(pending),
        errors=[f"{piece_number(run.id, s)}: {e}" for s, e in errors],
        submitted=counts.get("submitted", 0),
        delivered=counts.get("delivered", 0),
    )
