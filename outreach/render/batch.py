"""Renders a batch of pieces into one envelope PDF and one letter PDF, pieces in the same order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportlab import rl_config
from reportlab.pdfbase.pdfdoc import PDFObject, PDFObjectReference, PDFResourceDictionary
from reportlab.pdfgen.canvas import Canvas

from outreach.bulk import collector_paused
from outreach.errors import KitError
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
from outreach.render.recipient import Recipient, base_variables, piece_variables

# Images are stored binary (Flate/DCT) rather than ASCII85: a quarter smaller and faster to write.
rl_config.useA85 = 0
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


def _canvas(path: Path, page: Page, kit: Kit, what: str) -> Canvas:
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = page.media
    b = mm(BLEED_MM)
    # invariant=True fixes the document id and dates, so the same input gives the same bytes.
    # The initial font is the kit's own, so that ReportLab's page preamble never pulls in an unembedded
    # Helvetica (print shops reject unembedded fonts).
    c = Canvas(
        str(path),
        pagesize=(w, h),
        invariant=True,
        pageCompression=1,
        pdfVersion=(1, 6),
        initialFontName=kit.fonts["sans"].primary.name,
    )
    c.setTrimBox((b, b, w - b, h - b))
    c.setBleedBox((0, 0, w, h))
    c.setTitle(f"{kit.title} {what}")
    c.setAuthor(kit.sender.get("name", ""))
    c.setSubject(f"kit {kit.name} {kit.digest[:12]}")
    c.setCreator("Outreach")
    c.setProducer(PRODUCER)
    return c


class _Raw(PDFObject):  # type: ignore[misc]
    """A pre-formatted PDF value shared by every page (boxes), formatted once instead of per page."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def format(self, document: object) -> bytes:
        return self.data


class _SharedPages:
    """Gives every page of a form the same Resources object and box arrays: ReportLab would otherwise build
    and format a resource dictionary per page, the largest per-page cost in time and bytes."""

    def __init__(self, canvas: Canvas, page: Page) -> None:
        self.canvas = canvas
        w, h = page.media
        b = mm(BLEED_MM)
        self.media = _Raw(f"[0 0 {w:.4f} {h:.4f}]".encode())
        self.trim = _Raw(f"[{b:.4f} {b:.4f} {w - b:.4f} {h - b:.4f}]".encode())
        self.resources: dict[str, PDFObjectReference] = {}

    def after_show(self, form: str) -> None:
        doc = self.canvas._doc
        pdf_page = doc.Pages.pages[-1]
        ref = self.resources.get(form)
        if ref is None:
            res = PDFResourceDictionary()
            res.basicFonts()
            res.allProcs()
            res.XObject = doc.xobjDict([form])
            ref = self.resources[form] = doc.Reference(res)
        pdf_page.Resources = ref
        pdf_page.MediaBox = self.media
        pdf_page.BleedBox = self.media
        pdf_page.TrimBox = self.trim


def _static_form(
    canvas: Canvas,
    name: str,
    page: Page,
    kit: Kit,
    elements: Sequence[Element],
    base: Mapping[str, Any],
    extra: str,
) -> None:
    canvas.beginForm(name)
    for el in elements:
        if not el.variable:
            draw_static(canvas, page, kit, el, base)
    if name == "front":
        draw_front_standard(canvas, page, kit)
    if extra:
        canvas._code.append(extra)
    canvas._code.append(crop_marks(page))
    canvas.endForm()


def _piece_ops(
    canvas: Canvas, page: Page, kit: Kit, elements: Sequence[Element], variables: Mapping[str, Any]
) -> str:
    return "\n".join(variable_ops(canvas, page, kit, el, variables) for el in elements if el.variable)


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
        raise KitError(f"kit {kit.name}: is an {kit.channel} kit, not a letter kit")
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
    ce = _canvas(Path(envelopes), env_page, kit, "envelopes")
    cl = _canvas(Path(letters), let_page, kit, "letters")
    _static_form(ce, "front", env_page, kit, kit.front, base, "")
    back = kit.back + kit.flap
    _static_form(ce, "back", env_page, kit, back, base, "")
    folds = fold_marks(let_page, kit.envelope_size)
    letter_forms = [f"page{i + 1}" for i in range(len(kit.pages))]
    for form, elements in zip(letter_forms, kit.pages, strict=True):
        _static_form(cl, form, let_page, kit, elements, base, folds)

    shared = {id(ce): _SharedPages(ce, env_page), id(cl): _SharedPages(cl, let_page)}
    result = RenderResult()
    n_pages = len(kit.pages)
    for r in recipients:
        try:
            if not r.address or not r.postcode:
                raise KitError("no address or postcode to print")
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
        for canvas, form, ops in (
            (ce, "front", front),
            (ce, "back", back_ops),
            *((cl, f, p) for f, p in zip(letter_forms, pages, strict=True)),
        ):
            canvas.doForm(form)
            canvas._code.append(ops)
            canvas.showPage()
            shared[id(canvas)].after_show(form)
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
