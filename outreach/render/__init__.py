"""The renderer: campaign kits -> print-ready envelope and letter PDFs (ReportLab) and SMS texts. Pure: no
database inside, so Celery tasks can call it on chunks of pieces."""

from outreach.render.batch import PieceOutcome, RenderResult, check_glyphs, render_letters
from outreach.render.kit import Kit, kits_dir, load_kit
from outreach.render.recipient import Recipient, sample_recipients
from outreach.render.sms import SmsMessage, render_sms, sms_length, sms_parts

__all__ = [
    "Kit",
    "PieceOutcome",
    "Recipient",
    "RenderResult",
    "SmsMessage",
    "check_glyphs",
    "kits_dir",
    "load_kit",
    "render_letters",
    "render_sms",
    "sample_recipients",
    "sms_length",
    "sms_parts",
]
