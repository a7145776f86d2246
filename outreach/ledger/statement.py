"""A campaign statement as a terminal table, a spreadsheet-safe CSV, and a PDF a finance office can file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Group
from rich.table import Table

from outreach.ledger.schemas import Statement
from outreach.money import format_fen, yuan_text
from outreach.render.fonts import document_font
from outreach.spreadsheet import write_csv


def _title(st: Statement) -> str:
    return f"{st.campaign_name} · {st.period or '全部期间 all periods'}"


def _summary_rows(st: Statement) -> list[tuple[str, str]]:
    def money(fen: int | None) -> str:
        return "—" if fen is None else format_fen(fen)

    opening_label = (
        f"期初预算 Opening budget ({st.budget_period})" if st.budget_period else "期初预算 Opening budget"
    )
    return [
        (opening_label, money(st.opening_fen)),
        ("标价费用 List charges", money(st.list_fen)),
        ("减免 Waived by the offer", money(-st.waived_fen)),
        ("净费用 Net charges", money(st.net_fen)),
        ("退款 Refunds", money(-st.refunded_fen)),
        ("调整 Adjustments", money(st.adjusted_fen)),
        ("期末余额 Closing balance", money(st.closing_fen)),
        ("预留未用 Open reservations", money(st.outstanding_fen)),
        ("可用余额 Available", money(st.available_fen)),
    ]


RUN_HEADER = (
    "运行\nRun",
    "期间\nPeriod",
    "件数\nPieces",
    "计费单位\nUnits",
    "标价\nList",
    "减免\nWaived",
    "净额\nNet",
    "退件\nReturned",
    "退款\nRefunds",
)


def _run_rows(st: Statement) -> list[tuple[str, ...]]:
    return [
        (
            f"#{r.run_id}",
            r.period,
            f"{r.pieces:,}",
            f"{r.units:,}",
            format_fen(r.list_fen),
            format_fen(r.waived_fen),
            format_fen(r.net_fen),
            f"{r.refunded_pieces:,}",
            format_fen(r.refunded_fen),
        )
        for r in st.runs
    ]


def _total_row(st: Statement) -> tuple[str, ...]:
    """The runs table's total line."""
    return (
        "合计 Total",
        "",
        f"{sum(r.pieces for r in st.runs):,}",
        f"{sum(r.units for r in st.runs):,}",
        format_fen(st.list_fen),
        format_fen(st.waived_fen),
        format_fen(st.net_fen),
        f"{sum(r.refunded_pieces for r in st.runs):,}",
        format_fen(st.refunded_fen),
    )


def rich_statement(st: Statement) -> Group:
    """The statement as Rich tables for the terminal."""
    summary = Table(title=f"费用对账单 Statement: {_title(st)}", show_header=False, title_justify="left")
    summary.add_column("item")
    summary.add_column("amount", justify="right")
    for label, value in _summary_rows(st):
        summary.add_row(label, value)
    runs = Table(title="运行 Runs", title_justify="left")
    for i, head in enumerate(RUN_HEADER):
        runs.add_column(head.replace("\n", " "), justify="left" if i < 2 else "right")
    for row in _run_rows(st):
        runs.add_row(*row)
    runs.add_row(*_total_row(st), style="bold")
    parts: list[Table] = [summary, runs]
    if st.adjustments:
        adj = Table(title="调整 Adjustments", title_justify="left")
        for head in ("日期 Date", "期间 Period", "金额 Amount", "原因 Reason"):
            adj.add_column(head)
        for a in st.adjustments:
            adj.add_row(a.created, a.period, format_fen(a.amount_fen), a.reason)
        parts.append(adj)
    return Group(*parts)


CSV_HEADER = (
    "line",
    "run",
    "period",
    "pieces",
    "units",
    "list_yuan",
    "waived_yuan",
    "net_yuan",
    "returned_pieces",
    "refunds_yuan",
    "amount_yuan",
    "note",
)


def write_statement_csv(st: Statement, path: Path) -> int:
    """Writes the statement as CSV (formula-like cells neutralised); returns the number of rows."""
    rows: list[Sequence[object]] = []
    opening = "" if st.opening_fen is None else yuan_text(st.opening_fen)
    rows.append(
        ("opening_budget", "", st.budget_period or "", "", "", "", "", "", "", "", opening, st.campaign_name)
    )
    for r in st.runs:
        rows.append(
            (
                "run",
                r.run_id,
                r.period,
                r.pieces,
                r.units,
                yuan_text(r.list_fen),
                yuan_text(r.waived_fen),
                yuan_text(r.net_fen),
                r.refunded_pieces,
                yuan_text(r.refunded_fen),
                "",
                "",
            )
        )
    for a in st.adjustments:
        rows.append(
            ("adjustment", "", a.period, "", "", "", "", "", "", "", yuan_text(a.amount_fen), a.reason)
        )
    rows.append(
        (
            "total",
            "",
            st.period or "",
            sum(r.pieces for r in st.runs),
            sum(r.units for r in st.runs),
            yuan_text(st.list_fen),
            yuan_text(st.waived_fen),
            yuan_text(st.net_fen),
            sum(r.refunded_pieces for r in st.runs),
            yuan_text(st.refunded_fen),
            yuan_text(st.spent_fen),
            "spent",
        )
    )
    closing = "" if st.closing_fen is None else yuan_text(st.closing_fen)
    rows.append(("closing_balance", "", st.period or "", "", "", "", "", "", "", "", closing, ""))
    rows.append(("open_reservations", "", "", "", "", "", "", "", "", "", yuan_text(st.outstanding_fen), ""))
    return write_csv(path, CSV_HEADER, rows)


# --- PDF ---------------------------------------------------------------------------------------------


def _chart(st: Statement, font: str) -> object:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.legends import Legend
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors

    width, height = 480, 210
    drawing = Drawing(width, height)
    drawing.hAlign = "LEFT"
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 60, 35, 300, 145
    # Bars are drawn in fen (integers); the axis labels turn them back into yuan text.
    budget_row = [q.budget_fen or 0 for q in st.quarters]
    spent_row = [q.spent_fen for q in st.quarters]
    chart.data = [budget_row, spent_row]
    chart.categoryAxis.categoryNames = [
        q.label if q.label.startswith("Q") else f"{q.label} 全年" for q in st.quarters
    ]
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 8
    top = max([*budget_row, *spent_row, 100])
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = top * 11 // 10
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labelTextFormat = lambda fen: f"¥{int(fen) // 100:,}"
    chart.bars[0].fillColor = colors.HexColor("#9db7d5")
    chart.bars[1].fillColor = colors.HexColor("#c0392b")
    chart.barSpacing = 2
    chart.groupSpacing = 12
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = 375, 150
    legend.fontName = font
    legend.fontSize = 8
    legend.colorNamePairs = [
        (chart.bars[0].fillColor, "预算 Budget"),
        (chart.bars[1].fillColor, "支出 Spend"),
    ]
    drawing.add(legend)
    note = "季度无单独预算时，预算柱为空 (no bar: the quarter has no budget of its own)"
    drawing.add(String(60, 8, note, fontName=font, fontSize=7, fillColor=colors.grey))
    return drawing


def write_statement_pdf(st: Statement, path: Path, *, generated: datetime | None = None) -> None:
    """Writes the statement as an A4 PDF with embedded CJK font and a budget-against-spend chart."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = document_font()
    generated = generated or datetime.now().astimezone()
    title_style = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, spaceAfter=2)
    sub_style = ParagraphStyle(
        "sub", fontName=font, fontSize=9, leading=13, textColor=colors.HexColor("#444444")
    )
    head_style = ParagraphStyle("head", fontName=font, fontSize=11, leading=16, spaceBefore=8, spaceAfter=4)
    cell_style = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10)

    def table(rows: list[Sequence[object]], widths: list[float], right: range, total: bool = False) -> Table:
        t = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
        style = [
            ("FONTNAME", (0, 0), (-1, -1), font),
            ("FONTSIZE", (0, 0), (-1, -1), 8),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#34495e")),
            ("ALIGN", (right.start, 0), (right.stop - 1, -1), "RIGHT"),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f7f7f7")]),
            ("BOX", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
        ]
        if total:
            style += [
                ("LINEABOVE", (0, -1), (-1, -1), 0.6, colors.black),
                ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#eeeeee")),
            ]
        t.setStyle(TableStyle(style))
        return t

    story: list[object] = [
        Paragraph("费用对账单 Cost statement", title_style),
        Paragraph(
            f"活动 Campaign: {_esc(st.campaign_name)} &nbsp;&nbsp; "
            f"期间 Period: {_esc(st.period or '全部 all')}"
            f" &nbsp;&nbsp; 生成 Generated: {generated:%Y-%m-%d %H:%M}",
            sub_style,
        ),
        Spacer(1, 4 * mm),
        Paragraph("汇总 Summary", head_style),
    ]
    summary = [("项目 Item", "金额 Amount (元)"), *_summary_rows(st)]
    story.append(table(list(summary), [110 * mm, 50 * mm], right=range(1, 2)))
    story.append(Paragraph("运行明细 Runs", head_style))
    run_rows: list[Sequence[object]] = [RUN_HEADER, *_run_rows(st)]
    run_rows.append(_total_row(st))
    widths = [w * mm for w in (17, 17, 16, 20, 24, 22, 24, 17, 20)]
    story.append(table(run_rows, widths, right=range(2, 9), total=True))
    if st.adjustments:
        story.append(Paragraph("调整 Adjustments", head_style))
        adj_rows: list[Sequence[object]] = [("日期\nDate", "期间\nPeriod", "金额\nAmount", "原因\nReason")]
        adj_rows += [
            (a.created, a.period, format_fen(a.amount_fen), Paragraph(_esc(a.reason), cell_style))
            for a in st.adjustments
        ]
        story.append(table(adj_rows, [25 * mm, 22 * mm, 28 * mm, 102 * mm], right=range(2, 3)))
    story.append(Paragraph(f"预算与支出 Budget against spend, {st.year}", head_style))
    story.append(_chart(st, font))
    story.append(Spacer(1, 10 * mm))
    story.append(
        Paragraph(
            "经办人 Prepared by: ____________ &nbsp;&nbsp;&nbsp; 审核人 Checked by: ____________"
            " &nbsp;&nbsp;&nbsp; 日期 Date: ____________",
            sub_style,
        )
    )

    def footer(canvas: object, doc: object) -> None:
        canvas.saveState()  # type: ignore[attr-defined]
        canvas.setFont(font, 7)  # type: ignore[attr-defined]
        canvas.setFillColor(colors.grey)  # type: ignore[attr-defined]
        text = f"Outreach · {st.campaign_name} · {st.period or 'all'} · 第 {doc.page} 页"  # type: ignore[attr-defined]
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, text)  # type: ignore[attr-defined]
        canvas.restoreState()  # type: ignore[attr-defined]

    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"费用对账单 {st.campaign_name} {st.period or ''}".strip(),
        author="Outreach",
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
