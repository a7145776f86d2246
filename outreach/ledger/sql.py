"""The ledger's heavy SQL, named here: the chunked charge insert and sums of money that cannot overflow.

The charge statements do no arithmetic: each row's list and net amounts arrive computed by `rates.Price`, the
one place that knows the fee arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, func, literal
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

CHARGE_CHUNK = 5000

# Each charges one chunk of pieces in ONE statement; the unique key (run_id, piece_id, kind) makes a retried
# chunk insert nothing, and the count of inserted rows says how many were new.
CHARGE_CHUNK_SQL_POSTGRES = """
WITH chunk AS (
    SELECT * FROM unnest(CAST(:piece_ids AS bigint[]), CAST(:units AS integer[]),
                         CAST(:list_fen AS bigint[])) AS c(piece_id, units, list_fen)
), valid AS (
    SELECT chunk.piece_id, chunk.units, chunk.list_fen
    FROM chunk JOIN pieces p ON p.id = chunk.piece_id AND p.run_id = :run_id
), inserted AS (
    INSERT INTO ledger_entries (campaign_id, run_id, piece_id, kind, period, pieces, units,
                                list_fen, waived_fen, amount_fen, created_at)
    SELECT :campaign_id, :run_id, v.piece_id, 'charge', :period, 1, v.units,
           v.list_fen, :waived_fen, v.list_fen - :waived_fen, :now
    FROM valid AS v
    -- All or nothing: a chunk naming a piece of another run inserts no row at all.
    WHERE (SELECT count(*) FROM valid) = (SELECT count(*) FROM chunk)
    ON CONFLICT (run_id, piece_id, kind) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM valid) AS valid, (SELECT count(*) FROM inserted) AS new
"""
# SQLite has no arrays: the chunk travels as one JSON text of [piece_id, units, list_fen] triples.
# `WHERE true` is SQLite's documented way to let ON CONFLICT follow INSERT ... SELECT.
CHARGE_CHUNK_SQL_SQLITE = """
INSERT INTO ledger_entries
    (campaign_id, run_id, piece_id, kind, period, pieces, units, list_fen, waived_fen, amount_fen, created_at)
SELECT :campaign_id, :run_id, json_extract(c.value, '$[0]'), 'charge', :period, 1,
       json_extract(c.value, '$[1]'), json_extract(c.value, '$[2]'), :waived_fen,
       json_extract(c.value, '$[2]') - :waived_fen, :now
FROM json_each(:charges) AS c WHERE true
ON CONFLICT (run_id, piece_id, kind) DO NOTHING
"""
# SQLite: how many of a chunk's piece ids belong to the run (a charge for another run's piece is refused).
PIECES_OF_RUN_SQL_SQLITE = (
    "SELECT count(*) FROM pieces WHERE run_id = :run_id AND id IN (SELECT value FROM json_each(:piece_ids))"
)

# Sums of money. PostgreSQL's sum(bigint) is a numeric and never overflows. SQLite's sum() of integers raises
# "integer overflow" past 2**63, and total() is a float that loses fen: so on SQLite a sum is taken in two
# exact parts, the millions and the rest (x = (x / 10**6) * 10**6 + x % 10**6 with C's truncating division),
# and put together in Python. Entries are bounded (money.MAX_AMOUNT_FEN), but rows stored before the bound
# existed must not make a campaign's statement fail for good.
_SPLIT = 1_000_000


def fen_sums(
    session: Session, *amounts: ColumnElement[Any] | QueryableAttribute[Any]
) -> list[ColumnElement[Any]]:
    """The SQL columns that sum each amount safely; read them back with `fen_values`."""
    if session.get_bind().dialect.name == "postgresql":
        return [func.coalesce(func.sum(a), 0) for a in amounts]
    split = literal(_SPLIT, Integer)
    columns: list[ColumnElement[Any]] = []
    for a in amounts:
        # .op() renders the operators as written: SQLite's integer '/' truncates, '%' keeps the sign of `a`.
        columns += [
            func.coalesce(func.sum(a.op("/")(split)), 0),
            func.coalesce(func.sum(a.op("%")(split)), 0),
        ]
    return columns


def fen_values(session: Session, values: Sequence[Any]) -> list[int]:
    """The exact integer sums from a row's `fen_sums` columns (in the same order)."""
    if session.get_bind().dialect.name == "postgresql":
        return [int(v or 0) for v in values]
    return [int(values[i] or 0) * _SPLIT + int(values[i + 1] or 0) for i in range(0, len(values), 2)]
