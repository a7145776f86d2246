"""Rendering pages: one Jinja2 environment (autoescaped), the translator and helpers as template globals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from outreach.i18n import N_, _, current_language, translate
from outreach.money import format_fen
from outreach.periods import local_date, local_time_text
from outreach.runs.states import batch_state_label

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def local_time(value: datetime | None) -> str:
    """A stored UTC time as people in the union read it, with the zone."""
    return "" if value is None else local_time_text(value)


def date_text(value: date | datetime | None) -> str:
    """A date as people write it: 2027年3月1日 (in English 2027-03-01)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local_date(value if value.tzinfo else value.replace(tzinfo=UTC))
    if current_language() == "en":
        return value.isoformat()
    return f"{value.year}年{value.month}月{value.day}日"


def money_text(fen: int | None) -> str:
    """An amount in fen as people read it: ¥6,000.00."""
    return "" if fen is None else format_fen(fen)


def number_text(value: int | None) -> str:
    """A count with separators: 12,345."""
    return "" if value is None else f"{value:,}"


def size_text(value: object) -> str:
    """A byte count for people."""
    if not isinstance(value, int):
        return ""
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if value >= factor:
            return f"{value / factor:.1f} {unit}"
    return f"{value} B"


# File roles as the print shop reads them.
FILE_LABELS = {
    "envelopes": N_("file: envelopes"),
    "letters": N_("file: letters"),
    "manifest": N_("file: manifest"),
    "ticket": N_("file: job ticket"),
    "SHA256SUMS": N_("file: checksums"),
    "zip": N_("file: everything as one ZIP"),
    "sms": N_("file: SMS gateway file"),
}


def state_label(state: str) -> str:
    """A batch state for people."""
    return batch_state_label(state)


def file_label(role: str) -> str:
    """A batch file's role for people."""
    stem, _dot, suffix = role.partition(".")
    label = FILE_LABELS.get(role) or FILE_LABELS.get(stem) or FILE_LABELS.get(suffix.lower())
    return f"{translate(label)} ({role})" if label else role


env.globals.update(
    _=_,
    local_time=local_time,
    size_text=size_text,
    state_label=state_label,
    file_label=file_label,
    date_text=date_text,
    money=money_text,
    number=number_text,
)
env.filters.update(date_text=date_text, money=money_text, number=number_text, local_time=local_time)


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page."""
    html = env.get_template(template).render(request=request, lang=current_language(), **context)
    return HTMLResponse(html, status_code=status, headers=headers)


def render_error(
    request: Request, *, status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """An error page with the same wording as the API's problem document."""
    return render(request, "error.html", status=status, headers=headers, title=title, detail=detail)
