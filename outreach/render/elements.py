"""Page elements: static ones drawn once into a form XObject, variable ones as operators per piece.

Drawing goes through outreach.render.pdfwriter (raw operators, text codes) or ReportLab's public canvas API;
only pdfwriter touches ReportLab's internals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportlab.lib.utils import ImageReader

from outreach.errors import KitError
from outreach.i18n import _
from outreach.render.draw import Page, cmyk_fill, mm, text_ops
from outreach.render.kit import Element, Kit, run_template
from outreach.render.layout import Line, TextStyle, set_text
from outreach.render.marks import barcode_ops, qr_ops
from outreach.render.pdfwriter import PdfWriter

NUMBER_TEXT_MM = 2.8  # height reserved under the bars for the human-readable piece number


def style_for(kit: Kit, el: Element, size: float | None = None) -> TextStyle:
    """The text style of an element, optionally at another size (shrink-to-fit)."""
    heading = kit.fonts[el.heading_font] if el.heading_font else None
    heading_colour = cmyk_fill(kit.colours[el.heading_colour]) if el.heading_colour else None
    return TextStyle(
        chain=kit.fonts[el.font],
        size=size or el.size,
        leading=el.leading,
        colour=cmyk_fill(kit.colours[el.colour]),
        align=el.align,
        markup=el.markup,
        indent=el.indent,
        heading_chain=heading,
        heading_colour=heading_colour,
        heading_scale=el.heading_scale,
    )


def render_text(kit: Kit, el: Element, variables: Mapping[str, Any]) -> str:
    """Runs the element's template; a failure becomes a KitError naming kit, file and line."""
    assert el.template is not None and el.template_file is not None
    return run_template(kit.name, el.template, variables, template_file=el.template_file).strip()


class Overflow(Exception):
    """Text that does not fit its box even at the smallest allowed size."""


_FITTED: dict[tuple[int, str], list[Line]] = {}


def fit_text(kit: Kit, el: Element, text: str) -> list[Line]:
    """Sets text in the element's box, shrinking it (if the kit allows) until it fits (memoised)."""
    key = (id(el), text)
    hit = _FITTED.get(key)
    if hit is not None and hit[0].chain is kit.fonts[el.font]:
        return hit
    lines = _fit_text(kit, el, text)
    if len(_FITTED) > 20_000:
        _FITTED.clear()
    if lines:
        _FITTED[key] = lines
    return lines


def _fit_text(kit: Kit, el: Element, text: str) -> list[Line]:
    width = mm(el.w)
    height = mm(el.h)
    size = el.size
    while True:
        lines, used = set_text(text, style_for(kit, el, size), width)
        if used <= height + 0.5:
            return lines
        if el.fit != "shrink" or size - 0.5 < el.min_size:
            raise Overflow(
                _(
                    "{where}: text needs {need:.1f} mm but the box is {height:g} mm high",
                    where=el.where,
                    need=used / mm(1),
                    height=el.h,
                )
            )
        size -= 0.5


def missing_glyphs(kit: Kit, el: Element, text: str) -> str:
    """Characters of text that no font of the element's chains can draw."""
    missing = kit.fonts[el.font].missing(text)
    if el.heading_font and missing:
        missing = "".join(c for c in missing if kit.fonts[el.heading_font].font_for(c) is None)
    return missing


def draw_static(writer: PdfWriter, page: Page, kit: Kit, el: Element, variables: Mapping[str, Any]) -> None:
    """Draws one static element with the canvas API (runs once per file, inside a form)."""
    canvas = writer.canvas
    x, top = page.x(el.x), page.y(el.y)
    w, h = mm(el.w), mm(el.h)
    if el.kind == "image":
        assert el.file is not None
        canvas.drawImage(_image(el), x, top - h, w, h)
    elif el.kind in ("rect", "ellipse"):
        fill = el.fill is not None
        stroke = el.stroke is not None
        if fill:
            canvas.setFillColorCMYK(*(v / 100 for v in kit.colours[el.fill or "black"]))
        if stroke:
            canvas.setStrokeColorCMYK(*(v / 100 for v in kit.colours[el.stroke or "black"]))
            canvas.setLineWidth(el.line_width)
        if el.kind == "ellipse":
            canvas.ellipse(x, top - h, x + w, top, stroke=int(stroke), fill=int(fill))
        elif el.radius:
            canvas.roundRect(x, top - h, w, h, mm(el.radius), stroke=int(stroke), fill=int(fill))
        else:
            canvas.rect(x, top - h, w, h, stroke=int(stroke), fill=int(fill))
    elif el.kind == "line":
        canvas.setStrokeColorCMYK(*(v / 100 for v in kit.colours[el.stroke or el.colour]))
        canvas.setLineWidth(el.line_width)
        canvas.line(x, top, x + w, top - h if h > 0.01 else top)
    elif el.kind == "text":
        text = render_text(kit, el, variables)
        try:
            lines = fit_text(kit, el, text)
        except Overflow as exc:
            raise KitError(_("kit {kit}: {problem}", kit=kit.name, problem=exc)) from exc
        writer.append(text_ops(writer, lines, x, top))


def variable_ops(writer: PdfWriter, page: Page, kit: Kit, el: Element, variables: Mapping[str, Any]) -> str:
    """Operators for one per-piece element; raises KitError/Overflow/GlyphProblem for a bad piece."""
    x, top = page.x(el.x), page.y(el.y)
    if el.kind == "number":
        ops = _number_ops(writer, kit, el, str(variables["number"]))
        return f"q 1 0 0 1 {x:.2f} {top - mm(el.h):.2f} cm\n{ops}\nQ"
    if el.kind == "qr":
        code = str(variables.get("code") or "")
        if not code:
            return ""
        size = mm(min(el.w, el.h))
        return f"q 1 0 0 1 {x:.2f} {top - size:.2f} cm\n{_qr_ops(writer, code, size)}\nQ"
    text = render_text(kit, el, variables)
    missing = missing_glyphs(kit, el, text)
    if missing:
        raise GlyphProblem(missing)
    return text_ops(writer, fit_text(kit, el, text), x, top)


class GlyphProblem(Exception):
    """Characters in a piece's text that no configured font can draw."""

    def __init__(self, chars: str) -> None:
        self.chars = chars
        codes = ", ".join(f"{c} (U+{ord(c):04X})" for c in chars)
        super().__init__(_("no configured font can draw {chars}", chars=codes))


def _number_ops(writer: PdfWriter, kit: Kit, el: Element, number: str) -> str:
    """Barcode and number at the origin; the same piece's pages reuse it (Code 128 encoding is costly)."""
    key = (number, el.w, el.h)
    cached: tuple[tuple[str, float, float], str] | None = writer.memo.get("number")
    if cached is not None and cached[0] == key:
        return cached[1]
    bars_h = mm(el.h - NUMBER_TEXT_MM)
    style = TextStyle(kit.fonts["sans"], 6.5, 1.0, "0 0 0 1 k", align="center")
    lines, _height = set_text(number, style, mm(el.w))
    ops = (
        barcode_ops(number, 0, mm(el.h) - bars_h, mm(el.w), bars_h)
        + "\n"
        + text_ops(writer, [_shift(ln, bars_h + 0.5) for ln in lines], 0, mm(el.h))
    )
    writer.memo["number"] = (key, ops)
    return ops


def _qr_ops(writer: PdfWriter, code: str, size: float) -> str:
    """The QR code at the origin; the letter and the insert page of one piece reuse it."""
    cached: tuple[tuple[str, float], str] | None = writer.memo.get("qr")
    if cached is not None and cached[0] == (code, size):
        return cached[1]
    ops = qr_ops(code, 0, 0, size)
    writer.memo["qr"] = ((code, size), ops)
    return ops


def _shift(ln: Line, dy: float) -> Line:
    return Line(ln.text, ln.x, ln.y + dy, ln.size, ln.chain, ln.colour, ln.spacing)


_IMAGES: dict[str, ImageReader] = {}


def _image(el: Element) -> ImageReader | str:
    """JPEG artwork is passed through untouched (it is CMYK already); other formats are converted to CMYK."""
    assert el.file is not None
    if el.file.suffix.lower() in (".jpg", ".jpeg"):
        return str(el.file)
    from PIL import Image

    key = str(el.file)
    if key not in _IMAGES:
        with Image.open(el.file) as im:
            if im.mode in ("RGBA", "LA", "P"):
                rgba = im.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.split()[-1])
                im2 = flat
            else:
                im2 = im.convert("RGB")
            _IMAGES[key] = ImageReader(im2.convert("CMYK"))
    return _IMAGES[key]
