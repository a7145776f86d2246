"""Statements: the numbers, the CSV (read back, formulas neutralised) and the PDF (text, fonts, chart)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
import pytest
from pypdf import PdfReader
from rich.console import Console
from sqlalchemy.orm import Session

from outreach.errors import InputError
from outreach.ledger import service
from outreach.ledger.documents import rich_statement, write_statement_csv, write_statement_pdf
from outreach.ledger.schemas import AdjustmentLine, FeeLine, RunLine, Statement
from outreach.money import format_fen
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


def _statement_with(runs: tuple[RunLine, ...], *, adjust_reason: str = "邮资补差") -> Statement:
    return Statement(
        campaign_id=1,
        campaign_name="俏佳人[bold]",
        period="2027",
        budget_period="2027",
        opening_fen=2_000_000_000,
        runs=runs,
        adjustments=(
            AdjustmentLine(
                entry_id=1, period="2027-Q1", amount_fen=-500, reason=adjust_reason, created="2027-02-01"
            ),
        ),
        list_fen=sum(r.list_fen for r in runs),
        waived_fen=sum(r.waived_fen for r in runs),
        net_fen=sum(r.net_fen for r in runs),
        refunded_fen=sum(r.refunded_fen for r in runs),
        adjusted_fen=-500,
        outstanding_fen=0,
        year="2027",
        generated_at=datetime(2026, 11, 29, 18, 22, tzinfo=UTC),
    )


def _line(run_id: int, pieces: int, list_fen: int, waived_fen: int, returned: int, refunded: int) -> RunLine:
    return RunLine(
        run_id=run_id,
        period="2027-Q1",
        pieces=pieces,
        units=pieces,
        list_fen=list_fen,
        waived_fen=waived_fen,
        net_fen=list_fen - waived_fen,
        returned_pieces=returned,
        refunded_pieces=refunded,
        refunded_fen=refunded * 100,
        outstanding_fen=0,
    )


def _shown(st: Statement, width: int) -> str:
    buffer = io.StringIO()
    Console(width=width, file=buffer, color_system=None).print(rich_statement(st))
    return buffer.getvalue()


def _numbers(st: Statement) -> list[str]:
    out = [format_fen(v) for v in (st.list_fen, st.waived_fen, st.net_fen, st.refunded_fen)]
    for r in st.runs:
        out += [format_fen(r.list_fen), format_fen(r.waived_fen), format_fen(r.net_fen), f"{r.pieces:,}"]
    return out


@pytest.mark.parametrize("width", [80, 60])
def test_money_and_counts_are_never_cut(width: int) -> None:
    usual = _statement_with((_line(12, 6000, 820_000, 138_000, 3, 0),))
    huge = _statement_with(
        (_line(12, 6000, 820_000, 138_000, 3, 0), _line(13, 123_456, 1_234_567_800, 23_456_700, 1, 1)),
        adjust_reason="很长的原因说明文字" * 8,
    )
    for st in (usual, huge):
        text = _shown(st, width)
        assert "…" not in text
        assert all(len(line) <= width for line in text.splitlines())
        for number in _numbers(st):
            assert number in text, (width, number, text)
        assert (
            "很长的原因说明文字" * 2 in text.replace("\n", "").replace("│", "").replace(" ", "")
            or st is usual
        )
    # At 80 columns the usual statement keeps the one-table layout; the huge one turns into blocks at 60.
    if width == 80:
        assert "退件" in _shown(usual, 80).split("运行明细")[1].splitlines()[1]
    else:
        blocks = _shown(huge, 60).split("运行明细")[1]
        assert "#13 2027-Q1" in blocks and "¥12,345,678.00" in blocks


def test_the_terminal_shows_data_literally_and_the_time_in_the_unions_zone() -> None:
    st = _statement_with((_line(12, 10, 1000, 0, 0, 0),), adjust_reason="[red]x[/] \x1b[2J")
    text = _shown(st, 120)
    assert "俏佳人[bold]" in text and "[red]x[/]" in text and "\x1b" not in text and "\\x1b[2J" in text
    # 18:22 UTC on the 29th is 02:22 on the 30th in Shanghai; the zone is named.
    assert "2026-11-30 02:22 Asia/Shanghai UTC+08:00" in text


def test_returned_pieces_are_counted_apart_from_refunds(session: Session, tmp_path: Path) -> None:
    """A returned piece under a rate card without refunds is still a returned piece (issue 9.8)."""
    f.rate_card(session, refund_undeliverable=False)
    camp = f.campaign(session)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=100_000)
    run = f.run(session, camp, "2027-Q1")
    ids = [p.id for p in f.pieces(session, run, 5)]
    service.reserve(session=session, run_id=run.id, pieces=5)
    service.charge_bulk(session=session, run_id=run.id, charges=[(i, 1) for i in ids])
    for _ in range(2):  # reported twice: counted once
        assert (
            service.record_return(session=session, run_id=run.id, piece_id=ids[0], reason="查无此人") is None
        )
    service.record_return(session=session, run_id=run.id, piece_id=ids[1], reason="地址不详")
    st = service.statement(session=session, campaign_id=camp.id, period="2027-Q1")
    [line] = st.runs
    assert (line.returned_pieces, line.refunded_pieces, line.refunded_fen) == (2, 0, 0)
    assert st.returned_pieces == 2 and st.spent_fen == 500
    text = _shown(st, 120)
    assert "退件" in text and "退款" in text
    out = tmp_path / "s.csv"
    write_statement_csv(st, out)
    with out.open(encoding="utf-8-sig") as handle:
        rows = {r["line"]: r for r in csv.DictReader(handle)}
    assert (rows["run"]["returned_pieces"], rows["run"]["refunded_pieces"], rows["run"]["refunds_yuan"]) == (
        "2",
        "0",
        "0.00",
    )
    assert rows["generated_at"]["note"].endswith("+00:00")
    pdf = tmp_path / "s.pdf"
    write_statement_pdf(st, pdf)
    pdf_text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "退件" in pdf_text and "退款件数" in pdf_text and "Asia/Shanghai" in pdf_text
