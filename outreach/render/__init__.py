"""The renderer: campaign kits -> print-ready envelope and letter PDFs (ReportLab) and SMS texts. Pure: no
database and no settings inside (the caller passes KitOptions), so Celery tasks can call it on chunks of
pieces. Only outreach.render.pdfwriter touches ReportLab's internals."""

from outreach.render.batch import PieceOutcome, RenderResult, check_glyphs, render_letters
from outreach.render.kit import (
    Kit,
    KitOptions,
    kit_digest,
    kits_dir,
    load_kit,
    load_kit_cached,
    resolve_kit_path,
)
from outreach.render.recipient import Recipient, sample_recipients
from outreach.render.sms import SmsMessage, render_sms, sms_length, sms_parts

__all__ = [
    "Kit",
    "KitOptions",
    "PieceOutcome",
    "Recipient",
    "RenderResult",
    "SmsMessage",
    "check_glyphs",
    "kit_digest",
    "kits_dir",
    "load_kit",
    "load_kit_cached",
    "render_letters",
    "render_sms",
    "resolve_kit_path",
    "sample_recipients",
    "sms_length",
    "sms_parts",
]
