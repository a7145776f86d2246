"""Redemption codes: 10 characters of Crockford's base32 drawn from `secrets` (50 random bits), unique within
a run, issued in bulk when a run's pieces are frozen.

A code says nothing about its piece: it is not derived from the worker, the piece number or a counter, so
knowing one code (or a thousand) tells nothing about another. Guessing is what is left: with about 6,000
codes live in 2^50 ≈ 10^15, a guess hits with odds of 1 in 10^11, and the counter throttles failed look-ups.
"""

from __future__ import annotations

import io
import secrets

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from outreach.offers.models import RedemptionCode
from outreach.runs.models import Piece

# Crockford's base32: digits and capitals without I, L, O and U, so that nothing is misread when typed.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10
# Each random byte maps to ALPHABET[byte % 32]; 256 is a multiple of 32, so every symbol is equally likely.
_TABLE = bytes(ord(ALPHABET[b % 32]) for b in range(256))
# What people type by mistake, read as Crockford does: I and L are 1, O is 0; hyphens and spaces are dropped.
_TYPED = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})
CHUNK = 50_000


def generate(n: int) -> list[str]:
    """n distinct random codes."""
    out: set[str] = set()
    while len(out) < n:
        need = n - len(out)
        text = secrets.token_bytes(need * LENGTH).translate(_TABLE).decode("ascii")
        out.update(text[i : i + LENGTH] for i in range(0, need * LENGTH, LENGTH))
    return list(out)


def normalise(typed: str) -> str:
    """A code as typed or scanned (lower case, I/L/O, hyphens, spaces) in its stored form."""
    return typed.strip().upper().translate(_TYPED)


def well_formed(code: str) -> bool:
    """Whether a normalised code could be one (the right length, the right alphabet)."""
    return len(code) == LENGTH and all(ch in ALPHABET for ch in code)


def issue(*, session: Session, run_id: int) -> int:
    """Gives every piece of the run that has none a code; returns how many were issued (none twice)."""
    have = select(RedemptionCode.piece_id).where(RedemptionCode.run_id == run_id)
    pieces = select(Piece.id).where(Piece.run_id == run_id).order_by(Piece.id)
    if session.scalar(have.limit(1)) is not None:  # a rerun: only the pieces still without one
        pieces = pieces.where(Piece.id.not_in(have))
    piece_ids = session.scalars(pieces).all()
    if not piece_ids:
        return 0
    taken = set(session.scalars(select(RedemptionCode.code).where(RedemptionCode.run_id == run_id)))
    fresh: list[str] = []
    while len(fresh) < len(piece_ids):  # a second round only when a new code met an earlier one of the run
        for code in generate(len(piece_ids) - len(fresh)):
            if code not in taken:
                taken.add(code)
                fresh.append(code)
    rows = list(zip(piece_ids, fresh, strict=True))
    bind = session.connection()
    if bind.dialect.name == "postgresql":
        _copy(session, run_id, rows)
    else:
        for start in range(0, len(rows), CHUNK):
            session.execute(
                insert(RedemptionCode),
                [{"run_id": run_id, "piece_id": p, "code": c} for p, c in rows[start : start + CHUNK]],
            )
    return len(rows)


def _copy(session: Session, run_id: int, rows: list[tuple[int, str]]) -> None:
    # COPY moves a million rows in a few seconds where INSERT ... VALUES takes half a minute.
    raw = session.connection().connection.driver_connection
    with (
        raw.cursor() as cursor,  # type: ignore[union-attr]
        cursor.copy("COPY redemption_codes (run_id, piece_id, code) FROM STDIN") as copy,
    ):
        buffer = io.StringIO()
        for start in range(0, len(rows), CHUNK):
            buffer.seek(0)
            buffer.truncate()
            buffer.writelines(f"{run_id}\t{p}\t{c}\n" for p, c in rows[start : start + CHUNK])
            copy.write(buffer.getvalue())


def codes_of(*, session: Session, run_id: int, first_seq: int, last_seq: int) -> dict[int, str]:
    """Piece sequence number -> its code, for a batch of pieces."""
    return {
        int(seq): str(code)
        for seq, code in session.execute(
            select(Piece.seq, RedemptionCode.code)
            .join(RedemptionCode, RedemptionCode.piece_id == Piece.id)
            .where(Piece.run_id == run_id, Piece.seq.between(first_seq, last_seq))
        )
    }


def count(*, session: Session, run_id: int) -> int:
    """How many codes the run has."""
    return (
        session.scalar(
            select(func.count()).select_from(RedemptionCode).where(RedemptionCode.run_id == run_id)
        )
        or 0
    )
