"""Redemption codes: the generator's properties (length, alphabet, no repeats, uniform, no code telling of
another), issuing one per piece in bulk, and reading typed codes."""

from __future__ import annotations

import itertools
import math
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach.offers import codes
from outreach.offers.models import RedemptionCode
from outreach.runs.models import Piece
from tests.offers.helpers import offer_world, started_run

SAMPLE = 200_000


def test_codes_are_ten_crockford_characters_and_never_repeat() -> None:
    sample = codes.generate(SAMPLE)
    assert len(sample) == SAMPLE == len(set(sample))
    assert all(len(c) == 10 and codes.well_formed(c) for c in sample)
    assert not set("ILOU") & set("".join(sample[:1000]))


def test_every_symbol_is_equally_likely_in_every_position() -> None:
    sample = codes.generate(SAMPLE)
    expected = SAMPLE / 32
    for position in range(codes.LENGTH):
        counts = Counter(c[position] for c in sample)
        assert set(counts) == set(codes.ALPHABET)
        chi2 = sum((n - expected) ** 2 / expected for n in counts.values())
        # 31 degrees of freedom: chi² above 70 happens by chance about once in 10,000 samples.
        assert chi2 < 70, (position, chi2)


def test_no_code_tells_anything_about_the_next() -> None:
    # Consecutive codes agree in a position as often as unrelated random ones (1 in 32), and the difference
    # of their values is spread over the whole range: no counter, no step, no shared prefix.
    sample = codes.generate(SAMPLE)
    pairs = list(itertools.pairwise(sample))
    agree = sum(a[i] == b[i] for a, b in pairs for i in range(codes.LENGTH))
    rate = agree / (len(pairs) * codes.LENGTH)
    assert abs(rate - 1 / 32) < 0.002, rate

    def value(code: str) -> int:
        return int(code.translate(str.maketrans(codes.ALPHABET, "0123456789abcdefghijklmnopqrstuv")), 32)

    space = 32**codes.LENGTH
    steps = Counter(((value(b) - value(a)) % space) * 16 // space for a, b in pairs)
    expected = len(pairs) / 16
    assert all(abs(n - expected) < 5 * math.sqrt(expected) for n in steps.values()), steps
    # Two draws of the same size share (almost) nothing: with 2^50 codes, a shared one is a 1 in 10^5 event.
    assert len(set(sample) & set(codes.generate(SAMPLE))) <= 1


def test_typed_codes_are_read_as_crockford_reads_them() -> None:
    assert codes.normalise(" 7k3m-9qx2 tb ") == "7K3M9QX2TB"
    assert codes.normalise("iLoO") == "1100"
    assert not codes.well_formed(codes.normalise("R000001-0000001"))
    assert not codes.well_formed("7K3M9QX2T")
    assert not codes.well_formed("7K3M9QX2TU")


def test_a_run_gets_one_code_per_piece_once(session: Session) -> None:
    world = offer_world(session, women=15)
    run = started_run(session, world.campaign_id)
    count = session.scalar(select(func.count()).select_from(Piece).where(Piece.run_id == run.id))
    assert codes.count(session=session, run_id=run.id) == count == 15
    assert codes.issue(session=session, run_id=run.id) == 0
    found = session.scalars(select(RedemptionCode.code).where(RedemptionCode.run_id == run.id)).all()
    assert len(set(found)) == 15
    by_seq = codes.codes_of(session=session, run_id=run.id, first_seq=1, last_seq=15)
    assert sorted(by_seq) == list(range(1, 16)) and set(by_seq.values()) == set(found)
