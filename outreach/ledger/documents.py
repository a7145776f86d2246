"""A campaign statement shown to people: a terminal view (Rich), a spreadsheet-safe CSV, a PDF to file.

Presentation only; the numbers come from `outreach.ledger.statement`. Labels are catalogue messages (Chinese
by default); data (campaign names, reasons) is shown literally. Money and counts are never cut: the terminal
view keeps numeric columns whole (no_wrap) and, when the runs table does not fit the terminal, shows each run
as a block of label / value lines instead. Times are shown in the union's time zone with the zone named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from outreach.i18n import _
from outreach.ledger.schemas import Statement
from outreach.money import format_fen, yuan_text
from outreach.render.fonts import document_font
from outreach.settings import get_settings
from outreach.spreadsheet import write_csv

# Data shown in the terminal is put in Text cells (never parsed as markup); control characters (terminal
# escape codes) are made visible as in outreach.cli.output, which this module cannot import (it loads the
# whole CLI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: object) -> str:
    """The value as text with control characters made visible."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def local_time_text(moment: datetime | None) -> str:
    """A moment for people, in the union's zone and named: '2026-11-30 02:33 Asia/Shanghai UTC+08:00'."""
    zone = get_settings().timezone
    local = (moment or datetime.now(UTC)).astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {zone} UTC{offset[:3]}:{offset[3:]}"


def _title(st: Statement) -> str:
    return f"{st.campaign_name} · {st.period or _('all periods')}"


def _money(fen: int | None) -> str:
    return "—" if fen is None else format_fen(fen)


def _summary_rows(st: Statement) -> list[tuple[str, str]]:
    opening_label = (
        _("Opening budget ({period})", period=st.budget_period) if st.budget_period else _("Opening budget")
    )
    return [
        (opening_label, _money(st.opening_fen)),
        (_("List charges"), _money(st.list_fen)),
        (_("Waived by the offer"), _money(-st.waived_fen)),
        (_("Net charges"), _money(st.net_fen)),
        (_("Returned pieces"), f"{st.returned_pieces:,}"),
        (_("Refunds"), _money(-st.refunded_fen)),
        (_("Adjustments"), _money(st.adjusted_fen)),
        *(
            [
                (_("Ad income"), _money(-st.ad_income_fen)),
                (_("Net after ad income"), _money(st.net_after_income_fen)),
            ]
            if st.ad_income_fen
            else []
        ),
        (_("Closing balance"), _money(st.closing_fen)),
        (_("Open reservations"), _money(st.outstanding_fen)),
        (_("Available"), _money(st.available_fen)),
    ]


def _run_header() -> tuple[str, ...]:
    return (
        _("Run"),
        _("Period"),
        _("Pieces"),
        _("Units"),
        _("List"),
        _("Waived"),
        _("Net"),
        _("Returned"),
        _("Refunded pieces"),
        _("Refunds"),
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
            f"{r.returned_pieces:,}",
            f"{r.refunded_pieces:,}",
            format_fen(r.refunded_fen),
        )
        for r in st.runs
    ]


def _total_row(st: Statement) -> tuple[str, ...]:
    """The runs table's total line."""
    return (
        _("Total"),
        "",
        f"{sum(r.pieces for r in st.runs):,}",
        f"{sum(r.units for r in st.runs):,}",
        format_fen(st.list_fen),
        format_fen(st.waived_fen),
        format_fen(st.net_fen),
        f"{st.returned_pieces:,}",
        f"{sum(r.refunded_pieces for r in st.runs):,}",
        format_fen(st.refunded_fen),
    )


# The terminal shows these columns of the runs table: units only when some run's differ from its pieces
# (SMS parts), refunded pieces only when some returned piece was not refunded (else they equal returns).
_RUN, _PERIOD, _PIECES, _UNITS, _LIST, _WAIVED, _NET, _RETURNED, _REFUNDED, _REFUNDS = range(10)


def _terminal_columns(st: Statement) -> list[int]:
    columns = [_RUN, _PERIOD, _PIECES, _UNITS, _LIST, _WAIVED, _NET, _RETURNED, _REFUNDED, _REFUNDS]
    if all(r.units == r.pieces for r in st.runs):
        columns.remove(_UNITS)
    if all(r.refunded_pieces == r.returned_pieces for r in st.runs):
        columns.remove(_REFUNDED)
    return columns


class _RunsView:
    """The runs as one table when it fits the terminal, else as one label / value block per run."""

    def __init__(self, st: Statement) -> None:
        self.st = st

    def _wide(self) -> Table:
        header, columns = _run_header(), _terminal_columns(self.st)
        # A simple box and no cell padding: one space between columns, so more fits before the view turns.
        table = Table(
            title=_("Runs on this statement"),
            title_justify="left",
            box=box.SIMPLE_HEAD,
            padding=(0, 0),
            show_edge=False,
        )
        for i in columns:
            table.add_column(header[i], justify="left" if i < _PIECES else "right", no_wrap=True)
        for row in _run_rows(self.st):
            table.add_row(*(Text(plain(row[i])) for i in columns))
        table.add_row(*(Text(_total_row(self.st)[i], style="bold") for i in columns))
        return table

    def _blocks(self) -> Iterator[Table]:
        header, columns = _run_header(), _terminal_columns(self.st)
        rows = [*_run_rows(self.st), _total_row(self.st)]
        for row in rows:
            title = f"{row[_RUN]} {row[_PERIOD]}".strip()
            block = Table(
                title=Text(plain(title)), title_justify="left", show_header=False, box=None, padding=(0, 1)
            )
            block.add_column(ratio=1, overflow="fold")
            block.add_column(justify="right", no_wrap=True)
            for i in columns[2:]:
                block.add_row(header[i], row[i])
            yield block

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wide = self._wide()
        # Measured without the terminal's limit: the width the table needs to show every cell whole.
        needed = Measurement.get(console, options.update_width(10_000), wide).maximum
        if needed <= options.max_width:
            yield wide
        else:
            yield Text(_("Runs on this statement"), style="italic")
            yield from self._blocks()


def rich_statement(st: Statement) -> Group:
    """The statement for the terminal; money and counts are never cut, whatever the terminal's width."""
    title = Text(f"{_('Statement')}: {plain(_title(st))}", style="bold")
    generated = Text(f"{_('Generated')}: {local_time_text(st.generated_at)}", style="dim")
    summary = Table(show_header=False)
    summary.add_column(ratio=1, overflow="fold")
    summary.add_column(justify="right", no_wrap=True)
    for label, value in _summary_rows(st):
        summary.add_row(label, value)
    parts: list[object] = [title, generated, summary, _RunsView(st)]
    if st.adjustments:
        adj = Table(title=_("Adjustments"), title_justify="left")
        adj.add_column(_("Date"), no_wrap=True)
        adj.add_column(_("Period"), no_wrap=True)
        adj.add_column(_("Amount"), justify="right", no_wrap=True)
        adj.add_column(_("Reason"), ratio=1, overflow="fold")
        for a in st.adjustments:
            adj.add_row(a.created, a.period, format_fen(a.amount_fen), Text(plain(a.reason)))
        parts.append(adj)
    return Group(*parts)  # type: ignore[arg-type]


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
    "refunded_pieces",
    "refunds_yuan",
    "amount_yuan",
    "note",
)


def _csv_rows(st: Statement) -> Iterable[Sequence[object]]:
    blank = ("",) * 8
    opening = "" if st.opening_fen is None else yuan_text(st.opening_fen)
    yield ("opening_budget", "", st.budget_period or "", *blank, opening, st.campaign_name)
    for r in st.runs:
        yield (
            "run",
            r.run_id,
            r.period,
            r.pieces,
            r.units,
            yuan_text(r.list_fen),
            yuan_text(r.waived_fen),
            yuan_text(r.net_fen),
            r.returned_pieces,
            r.refunded_pieces,
            yuan_text(r.refunded_fen),
            "",
            "",
        )
    for a in st.adjustments:
        yield ("adjustment", "", a.period, *blank, yuan_text(a.amount_fen), a.reason)
    yield (
        "total",
        "",
        st.period or "",
        sum(r.pieces for r in st.runs),
        sum(r.units for r in st.runs),
        yuan_text(st.list_fen),
        yuan_text(st.waived_fen),
        yuan_text(st.net_fen),
        st.returned_pieces,
        sum(r.refunded_pieces for r in st.runs),
        yuan_text(st.refunded_fen),
        yuan_text(st.spent_fen),
        "spent",
    )
    if st.ad_income_fen:
        yield ("ad_income", "", st.period or "", *blank, yuan_text(st.ad_income_fen), "")
        yield ("net_after_ad_income", "", st.period or "", *blank, yuan_text(st.net_after_income_fen), "")
    closing = "" if st.closing_fen is None else yuan_text(st.closing_fen)
    yield ("closing_balance", "", st.period or "", *blank, closing, "")
    yield ("open_reservations", "", "", *blank, yuan_text(st.outstanding_fen), "")
    generated = st.generated_at.astimezone(UTC).isoformat() if st.generated_at else ""
    # Files keep the moment in UTC (ISO 8601 with its offset); people read it in local time elsewhere.
    yield ("generated_at", "", "", *blank, "", generated)


def write_statement_csv(st: Statement, path: Path) -> int:
    """Writes the statement as CSV (formula-like cells neutralised); returns the number of rows."""
    return write_csv(path, CSV_HEADER, _csv_rows(st))


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
        q.label if q.label.startswith("Q") else _("{year} whole year", year=q.label) for q in st.quarters
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
        (chart.bars[0].fillColor, _("Budget")),
        (chart.bars[1].fillColor, _("Spend")),
    ]
    drawing.add(legend)
    note = _("No budget bar: the quarter has no budget of its own")
    drawing.add(String(60, 8, note, fontName=font, fontSize=7, fillColor=colors.grey))
    return drawing


def write_statement_pdf(st: Statement, path: Path, *, generated: datetime | None = None) -> None:
    """Writes the statement as an A4 PDF with embedded CJK font and a budget-against-spend chart."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = document_font(get_settings().fonts)
    generated = generated or st.generated_at
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
        Paragraph(_esc(_("Cost statement")), title_style),
        Paragraph(
            f"{_esc(_('Campaign'))}: {_esc(st.campaign_name)} &nbsp;&nbsp; "
            f"{_esc(_('Period'))}: {_esc(st.period or _('all periods'))}"
            f" &nbsp;&nbsp; {_esc(_('Generated'))}: {_esc(local_time_text(generated))}",
            sub_style,
        ),
        Spacer(1, 4 * mm),
        Paragraph(_esc(_("Summary")), head_style),
    ]
    summary = [(_("Item"), _("Amount (yuan)")), *_summary_rows(st)]
    story.append(table(list(summary), [110 * mm, 50 * mm], right=range(1, 2)))
    story.append(Paragraph(_esc(_("Runs on this statement")), head_style))
    header = [Paragraph(_esc(h), cell_style) for h in _run_header()]
    run_rows: list[Sequence[object]] = [header, *_run_rows(st)]
    run_rows.append(_total_row(st))
    widths = [w * mm for w in (12, 15, 15, 16, 22, 20, 22, 12, 16, 20)]
    story.append(table(run_rows, widths, right=range(2, 10), total=True))
    if st.adjustments:
        story.append(Paragraph(_esc(_("Adjustments")), head_style))
        adj_rows: list[Sequence[object]] = [(_("Date"), _("Period"), _("Amount"), _("Reason"))]
        adj_rows += [
            (a.created, a.period, format_fen(a.amount_fen), Paragraph(_esc(a.reason), cell_style))
            for a in st.adjustments
        ]
        story.append(table(adj_rows, [25 * mm, 22 * mm, 28 * mm, 102 * mm], right=range(2, 3)))
    story.append(Paragraph(_esc(_("Budget against spend, {year}", year=st.year or "")), head_style))
    story.append(_chart(st, font))
    story.append(Spacer(1, 10 * mm))
    story.append(
        Paragraph(
            f"{_esc(_('Prepared by'))}: ____________ &nbsp;&nbsp;&nbsp; {_esc(_('Checked by'))}: ____________"
            f" &nbsp;&nbsp;&nbsp; {_esc(_('Date'))}: ____________",
            sub_style,
        )
    )

    def footer(canvas: object, doc: object) -> None:
        canvas.saveState()  # type: ignore[attr-defined]
        canvas.setFont(font, 7)  # type: ignore[attr-defined]
        canvas.setFillColor(colors.grey)  # type: ignore[attr-defined]
        page = _("page {page}", page=doc.page)  # type: ignore[attr-defined]
        text = f"Outreach · {st.campaign_name} · {st.period or _('all periods')} · {page}"
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, text)  # type: ignore[attr-defined]
        canvas.restoreState()  # type: ignore[attr-defined]

    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"{_('Cost statement')} {st.campaign_name} {st.period or ''}".strip(),
        author="Outreach",
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
