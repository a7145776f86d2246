"""The job ticket: what a print shop needs to produce a batch, as JSON and as a one-page PDF."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from outreach.campaigns.models import Campaign
from outreach.render import Kit
from outreach.render.fonts import document_font
from outreach.runs.models import Run, piece_number
from outreach.settings import get_settings

# How an A4 letter is folded to go into each envelope size (see outreach.render.marks.FOLDS).
FOLD_FOR_ENVELOPE = {
    "DL": "letter fold in three (99 mm panels)",
    "ZL": "letter fold in three (99 mm panels)",
    "B6": "fold in three, then in half",
    "C5": "fold in half (148.5 mm)",
    "C4": "flat, unfolded",
}
SORT_ORDER = "postcode, township, work unit, name (letters to one unit travel together)"


@dataclass(frozen=True)
class JobTicket:
    """The facts of one batch, for the print shop."""

    campaign: str
    run: int
    period: str
    batch: str
    print_shop: str | None
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
        """The ticket of one batch."""
        letter = kit.channel == "letter"
        w, h = kit.envelope_mm
        pw, ph = kit.paper_mm
        return cls(
            campaign=campaign.name,
            run=run.id,
            period=run.period,
            batch=f"{batch_seq} of {batch_count}",
            print_shop=campaign.print_shop,
            channel=kit.channel,
            kit=kit.name,
            kit_digest=kit.digest,
            pieces=pieces,
            failed_pieces=failed,
            first_piece=piece_number(run.id, first),
            last_piece=piece_number(run.id, last),
            envelope=f"{kit.envelope_size} {w:g}×{h:g} mm (GB/T 1416)" if letter else "-",
            envelope_pages=pieces * kit.envelope_pages,
            paper=f"{kit.paper} {pw:g}×{ph:g} mm" if letter else "-",
            letter_pages=letter_pages,
            colours="CMYK 4/4, fonts embedded" if letter else "-",
            bleed="3 mm, crop marks outside the trim" if letter else "-",
            fold=FOLD_FOR_ENVELOPE.get(kit.envelope_size, "-") if letter else "-",
            insert_order=(
                f"letters.pdf pages {kit.letter_pages} per piece go into the envelope of the same piece, "
                "same order as envelopes.pdf (check the piece numbers)"
                if letter
                else "-"
            ),
            sort_order=SORT_ORDER,
            sms_parts=sms_parts,
            send_window="-" if letter else sms_window(),
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


def sms_window() -> str:
    """The hours a gateway may send this batch, as printed on the ticket."""
    s = get_settings()
    return f"{s.sms_send_start_hour:02d}:00-{s.sms_send_end_hour:02d}:00 {s.timezone}"


def write_ticket_pdf(ticket: JobTicket, path: Path) -> None:
    """Writes the ticket as a one-page A4 PDF (deterministic bytes)."""
    font = document_font()
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22)
    data = ticket.as_dict()
    rows = [
        [Paragraph(label, body), Paragraph(str(data[key] if data[key] is not None else "-"), body)]
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
            Paragraph(f"印制工单 Job ticket · {ticket.campaign} {ticket.period}", title),
            Spacer(1, 4 * mm),
            table,
        ]
    )
