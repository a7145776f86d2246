"""Renders a batch of pieces into one envelope PDF and one letter PDF, pieces in the same order.

Writes through outreach.render.pdfwriter, the only module that touches ReportLab's internals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outreach.bulk import collector_paused
from outreach.errors import KitError
from outreach.i18n import _
from outreach.render.draw import BLEED_MM, Page, mm
from outreach.render.elements import (
    GlyphProblem,
    Overflow,
    draw_static,
    missing_glyphs,
    render_text,
    variable_ops,
)
from outreach.render.envelope import draw_front_standard, postcode_ops
from outreach.render.kit import Element, Kit
from outreach.render.marks import crop_marks, fold_marks
from outreach.render.pdfwriter import PdfWriter
from outreach.render.recipient import Recipient, base_variables, piece_variables

PRODUCER = "Outreach renderer (ReportLab)"


@dataclass(slots=True)
class PieceOutcome:
    """What became of one piece: its pages in the letter file, or why it was skipped."""

    number: str
    pages: int
    error: str | None = None


@dataclass(slots=True)
class RenderResult:
    """The pieces written to both files (in order) and those skipped with their reason."""

    rendered: list[PieceOutcome] = field(default_factory=list)
    failed: list[PieceOutcome] = field(default_factory=list)


def _writer(path: Path, page: Page, kit: Kit, what: str) -> PdfWriter:
    return PdfWriter(
        path,
        media=page.media,
        bleed=mm(BLEED_MM),
        title=f"{kit.title} {what}",
        author=kit.sender.get("name", ""),
        subject=f"kit {kit.name} {kit.digest[:12]}",
        creator="Outreach",
        producer=PRODUCER,
        initial_font=kit.fonts["sans"].primary.name,
    )


def _static_form(
    writer: PdfWriter,
    name: str,
    page: Page,
    kit: Kit,
    elements: Sequence[Element],
    base: Mapping[str, Any],
    extra: str,
) -> None:
    writer.begin_form(name)
    for el in elements:
        if not el.variable:
            draw_static(writer, page, kit, el, base)
    if name == "front":
        draw_front_standard(writer, page, kit)
    if extra:
        writer.append(extra)
    writer.append(crop_marks(page))
    writer.end_form()


def _piece_ops(
    writer: PdfWriter, page: Page, kit: Kit, elements: Sequence[Element], variables: Mapping[str, Any]
) -> str:
    return "\n".join(variable_ops(writer, page, kit, el, variables) for el in elements if el.variable)


def render_letters(
    kit: Kit,
    recipients: Sequence[Recipient],
    *,
    envelopes: Path,
    letters: Path,
    context: Mapping[str, object] | None = None,
) -> RenderResult:
    """Writes one envelope PDF and one letter PDF; a piece that cannot be drawn is skipped and reported."""
    if kit.channel != "letter":
        raise KitError(
            _("kit {kit}: is an {channel} kit, not a letter kit", kit=kit.name, channel=kit.channel)
        )
    with collector_paused():
        return _render_letters(kit, recipients, envelopes=envelopes, letters=letters, context=context)


def _render_letters(
    kit: Kit,
    recipients: Sequence[Recipient],
    *,
    envelopes: Path,
    letters: Path,
    context: Mapping[str, object] | None,
) -> RenderResult:
    base = base_variables(kit.title, kit.sender, kit.variables, context)
    env_page = Page(*kit.envelope_mm)
    let_page = Page(*kit.paper_mm)
    ce = _writer(Path(envelopes), env_page, kit, "envelopes")
    cl = _writer(Path(letters), let_page, kit, "letters")
    _static_form(ce, "front", env_page, kit, kit.front, base, "")
    back = kit.back + kit.flap
    _static_form(ce, "back", env_page, kit, back, base, "")
    folds = fold_marks(let_page, kit.envelope_size)
    letter_forms = [f"page{i + 1}" for i in range(len(kit.pages))]
    for form, elements in zip(letter_forms, kit.pages, strict=True):
        _static_form(cl, form, let_page, kit, elements, base, folds)

    result = RenderResult()
    n_pages = len(kit.pages)
    for r in recipients:
        try:
            if not r.address or not r.postcode:
                raise KitError(_("no address or postcode to print"))
            variables = piece_variables(base, r)
            front = (
                postcode_ops(ce, env_page, kit, r.postcode)
                + "\n"
                + _piece_ops(ce, env_page, kit, kit.front, variables)
            )
            back_ops = _piece_ops(ce, env_page, kit, back, variables)
            pages = [_piece_ops(cl, let_page, kit, els, variables) for els in kit.pages]
        except (KitError, Overflow, GlyphProblem) as exc:
            result.failed.append(PieceOutcome(r.number, 0, str(exc)))
            continue
        ce.page("front", front)
        ce.page("back", back_ops)
        for form, ops in zip(letter_forms, pages, strict=True):
            cl.page(form, ops)
        result.rendered.append(PieceOutcome(r.number, n_pages))
    ce.save()
    cl.save()
    return result


def check_glyphs(kit: Kit, recipients: Iterable[Recipient]) -> dict[str, str]:
    """Piece number -> the characters of its printed text that no configured font can draw."""
    base = base_variables(kit.title, kit.sender, kit.variables, None)
    if kit.channel == "sms":
        return {}
    elements = [
        el
        for el in (*kit.front, *kit.back, *kit.flap, *(e for p in kit.pages for e in p))
        if el.variable and el.kind == "text"
    ]
    sans = kit.fonts["sans"]
    out: dict[str, str] = {}
    for r in recipients:
        variables = piece_variables(base, r)
        missing = sans.missing(r.postcode or "")
        for el in elements:
            try:
                text = render_text(kit, el, variables)
            except KitError:
                # A template failure is reported by render_letters; here only glyphs matter.
                text = " ".join(filter(None, (r.name, r.unit_name, r.address)))
            missing += "".join(c for c in missing_glyphs(kit, el, text) if c not in missing)
        if missing:
            out[r.number] = missing
    return out
