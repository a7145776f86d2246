"""What the print shop reports back: a batch downloaded, printed, handed to the post; pieces returned."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences import suppression
from outreach.db import utcnow
from outreach.errors import InputError, NotFound, StateError
from outreach.ledger import service as ledger
from outreach.runs.models import BATCH_STATES, Batch, Piece

_NUMBER = re.compile(r"^R(\d{6})-(\d{7})$")


def report(*, session: Session, batch_id: int, state: str) -> Batch:
    """Records a batch's progress at the print shop; states only move forward."""
    if state not in BATCH_STATES[1:]:
        raise InputError(f"a print shop reports one of {', '.join(BATCH_STATES[1:])}, not {state!r}")
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    if BATCH_STATES.index(state) < BATCH_STATES.index(batch.state):
        raise StateError(f"batch {batch_id} is {batch.state} already; it cannot go back to {state}")
    now = utcnow()
    batch.state = state
    stamp = {"downloaded": "downloaded_at", "printed": "printed_at", "mailed": "mailed_at"}[state]
    if getattr(batch, stamp) is None:
        setattr(batch, stamp, now)
    session.flush()
    return batch


def find_piece(*, session: Session, number: str) -> Piece:
    """The piece with a printed number such as R000012-0000345."""
    m = _NUMBER.match(number.strip().upper())
    if not m:
        raise InputError(f"{number!r} is not a piece number like R000012-0000345")
    piece = session.scalar(select(Piece).where(Piece.run_id == int(m.group(1)), Piece.seq == int(m.group(2))))
    if piece is None:
        raise NotFound(f"no piece numbered {number}")
    return piece


def record_returns(*, session: Session, numbers: Sequence[str], reason: str = "undeliverable") -> int:
    """Records returned letters: suppresses the address for mail and refunds where the offer says so."""
    for number in numbers:
        piece = find_piece(session=session, number=number)
        suppression.record_returned_mail(
            session=session, worker_id=piece.worker_id, note=f"{number}: {reason}"
        )
        ledger.refund(session=session, run_id=piece.run_id, piece_id=piece.id, reason=reason)
    return len(numbers)
