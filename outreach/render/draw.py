"""Low-level PDF operators for the hot path: text in embedded TrueType subsets, CMYK fills, rectangles.

ReportLab's canvas API formats every number and re-resolves fonts per call; per piece we only append
pre-formatted operator strings to the page stream, which is what keeps rendering above 1,000 pieces/s.
Text is encoded through outreach.render.pdfwriter, the only module that touches ReportLab's internals.
"""

from __future__ import annotations

from collections.abc import Sequence

from outreach.render.layout import Line
from outreach.render.pdfwriter import PdfWriter

MM = 72.0 / 25.4
BLEED_MM = 3.0


def mm(v: float) -> float:
    """Millimetres to PDF points."""
    return v * MM


def cmyk_fill(cmyk: Sequence[float]) -> str:
    """Fill-colour operator for a CMYK colour given in percent."""
    return " ".join(_num(c / 100.0) for c in cmyk) + " k"


def cmyk_stroke(cmyk: Sequence[float]) -> str:
    """Stroke-colour operator for a CMYK colour given in percent."""
    return " ".join(_num(c / 100.0) for c in cmyk) + " K"


def _num(v: float) -> str:
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


class Page:
    """Maps kit coordinates (mm from the trim's top-left corner) onto the media box (pt, bottom-left)."""

    __slots__ = ("height_mm", "width_mm")

    def __init__(self, width_mm: float, height_mm: float) -> None:
        self.width_mm = width_mm
        self.height_mm = height_mm

    @property
    def media(self) -> tuple[float, float]:
        """Media box size in points: trim plus bleed on every side."""
        return mm(self.width_mm + 2 * BLEED_MM), mm(self.height_mm + 2 * BLEED_MM)

    def x(self, x_mm: float) -> float:
        """Page x in points of a kit x in mm."""
        return (x_mm + BLEED_MM) * MM

    def y(self, y_mm: float) -> float:
        """Page y in points of a kit y (from the top) in mm."""
        return (self.height_mm + BLEED_MM - y_mm) * MM


def text_ops(writer: PdfWriter, lines: Sequence[Line], left: float, top: float) -> str:
    """PDF operators drawing set lines whose box has its top-left corner at (left, top) in points."""
    cache = _run_cache(writer)
    out: list[str] = ["BT"]
    colour = None
    for ln in lines:
        if ln.colour != colour:
            colour = ln.colour
            out.append(colour)
        out.append(f"{ln.spacing:.3f} Tc" if ln.spacing else "0 Tc")
        out.append(f"1 0 0 1 {left + ln.x:.2f} {top - ln.y:.2f} Tm")
        key = (ln.chain, ln.size, ln.text)
        shown = cache.get(key)
        if shown is None:
            shown = cache[key] = _show(writer, ln)
        out.append(shown)
    out.append("ET")
    return "\n".join(out)


def _run_cache(writer: PdfWriter) -> dict[tuple[object, float, str], str]:
    """Per-document cache of shown strings: a subset's codes never change once assigned in a document."""
    cache: dict[tuple[object, float, str], str] | None = writer.memo.get("shown")
    if cache is None or len(cache) > 50_000:
        cache = writer.memo["shown"] = {}
    return cache


def _show(writer: PdfWriter, ln: Line) -> str:
    size = f"{ln.size:.2f}"
    parts = []
    for font, run in ln.chain.runs(ln.text):
        for name, data in writer.encode(font.ttf, run):
            parts.append(f"{name} {size} Tf <{data.hex()}> Tj")
    return "\n".join(parts)


def rect_ops(
    x: float, y: float, w: float, h: float, *, fill: str | None, stroke: str | None, width: float
) -> str:
    """A rectangle (pt, bottom-left origin) filled and/or stroked."""
    parts = []
    if fill:
        parts.append(fill)
    if stroke:
        parts.append(f"{stroke} {width:.2f} w")
    paint = "B" if fill and stroke else ("f" if fill else "S")
    parts.append(f"{x:.2f} {y:.2f} {w:.2f} {h:.2f} re {paint}")
    return "\n".join(parts)
