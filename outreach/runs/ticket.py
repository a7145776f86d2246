"""The job ticket: what a print shop needs to produce a batch, as JSON and as a one-page PDF.

The production lines (envelope, paper, fold, send window) come from the campaign's channel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from outreach.accounts.models import Organisation
from outreach.campaigns.models import Campaign
from outreach.channels import get_channel
from outreach.render import Kit
from outreach.render.fonts import document_font
from outreach.runs.models import Run, piece_number
from outreach.settings import get_settings

SORT_ORDER = "postcode, township, work unit, name (letters to one unit travel together)"
# What the ticket says when the campaign names no print shop; such a batch is not handed out.
UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class JobTicket:
    """The facts of one batch, for the print shop."""

    campaign: str
    run: int
    period: str
    batch: str
    print_shop: str
    print_shop_id: int | None
    channel: str
    kit: str
    kit_digest: str
    pieces: int
    failed_pieces: int
    first_piece: str
    last_piece: str
    envelope: str
    envelope_pages: int
    paper: str
    letter_pages: int
    colours: str
    bleed: str
    fold: str
    insert_order: str
    sort_order: str
    sms_parts: int
    send_window: str
    checksums: dict[str, str]

    @classmethod
    def build(
        cls,
        *,
        campaign: Campaign,
        print_shop: Organisation | None,
        run: Run,
        kit: Kit,
        batch_seq: int,
        batch_count: int,
        pieces: int,
        failed: int,
        letter_pages: int,
        sms_parts: int,
        first: int,
        last: int,
        checksums: dict[str, str],
    ) -> JobTicket:
        """The ticket of one batch; `print_shop` is the campaign's print shop, or None when none is named."""
        lines = get_channel(kit.channel).ticket_lines(kit, pieces=pieces)
        return cls(
            campaign=campaign.name,
            run=run.id,
            period=run.period,
            batch=f"{batch_seq} of {batch_count}",
            print_shop=print_shop.name if print_shop is not None else UNASSIGNED,
            print_shop_id=print_shop.id if print_shop is not None else None,
            channel=kit.channel,
            kit=kit.name,
            kit_digest=kit.digest,
            pieces=pieces,
            failed_pieces=failed,
            first_piece=piece_number(run.id, first),
            last_piece=piece_number(run.id, last),
            envelope=str(lines["envelope"]),
            envelope_pages=int(lines["envelope_pages"]),
            paper=str(lines["paper"]),
            letter_pages=letter_pages,
            colours=str(lines["colours"]),
            bleed=str(lines["bleed"]),
            fold=str(lines["fold"]),
            insert_order=str(lines["insert_order"]),
            sort_order=SORT_ORDER,
            sms_parts=sms_parts,
            send_window=str(lines["send_window"]),
            checksums=checksums,
        )

    def as_dict(self) -> dict[str, object]:
        """The ticket as JSON-ready data."""
        return asdict(self)


LABELS = {
    "campaign": "活动 campaign",
    "run": "批次号 run",
    "period": "期次 period",
    "batch": "分批 batch",
    "print_shop": "印制单位 print shop",
    "pieces": "件数 pieces",
    "failed_pieces": "未生成 not rendered",
    "first_piece": "首件 first piece",
    "last_piece": "末件 last piece",
    "envelope": "信封 envelope",
    "envelope_pages": "信封页数 envelope pages",
    "paper": "信纸 paper",
    "letter_pages": "信纸页数 letter pages",
    "colours": "色彩 colours",
    "bleed": "出血 bleed",
    "fold": "折页 fold",
    "insert_order": "装封 insert order",
    "sort_order": "排序 sort order",
    "sms_parts": "短信条数 SMS parts",
    "send_window": "发送时段 send window",
}


def write_ticket_pdf(ticket: JobTicket, path: Path) -> None:
    """Writes the ticket as a one-page A4 PDF (deterministic bytes)."""
    font = document_font(get_settings().fonts)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22)
    data = ticket.as_dict()
    shown = {**data, "print_shop": "未指定 unassigned" if ticket.print_shop_id is None else ticket.print_shop}
    rows = [
        [Paragraph(label, body), Paragraph(escape(str(shown[key] if shown[key] is not None else "-")), body)]
        for key, label in LABELS.items()
    ]
    rows += [
        [Paragraph(f"SHA-256 {name}", body), Paragraph(digest, body)]
        for name, digest in sorted(ticket.checksums.items())
    ]
    table = Table(rows, colWidths=[48 * mm, 122 * mm])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.3, colors.CMYKColor(0, 0, 0, 0.5)),
                ("BACKGROUND", (0, 0), (0, -1), colors.CMYKColor(0, 0, 0, 0.06)),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Job ticket {ticket.campaign} {ticket.period} batch {ticket.batch}",
        author="Outreach",
        creator="Outreach",
        invariant=1,
    )
    doc.build(
        [
            Paragraph(escape(f"印制工单 Job ticket · {ticket.campaign} {ticket.period}"), title),
            Spacer(1, 4 * mm),
            table,
        ]
    )
