"""The PDF writer: the ONLY module of Outreach that touches ReportLab's internals.

The renderer's speed (over 1,000 pieces/s) comes from appending pre-formatted operators to a page stream,
sharing one resource dictionary between pages, encoding text into TrueType subsets directly and reading bar
widths from ReportLab's Code 128 encoder. All of that reaches past ReportLab's public API (`canvas._code`,
`canvas._doc`, `doc.xobjDict`, `TTFont.splitString`, `TTFont.face`, `Code128.decompose`, `PDFObject`, the
ToUnicode CMap writer), so it lives here and nowhere else; every other module draws through `PdfWriter` or
ReportLab's public canvas API. `tests/render/test_pdfwriter.py` greps `outreach/` to keep it so.

ReportLab is pinned in pyproject.toml to the range these internals were tested with; the byte-identical and
read-back tests in tests/render are the tripwire when that range moves.

It also corrects ReportLab's ToUnicode CMap for characters beyond the Basic Multilingual Plane (𠮷 U+20BB7,
common in names): ReportLab writes `<20BB7>`, a truncated code; we write the UTF-16 surrogate pair
`<D842DFB7>`, so that copying or searching a name in the PDF gives the right character.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from reportlab import rl_config
from reportlab.graphics.barcode import qrencoder
from reportlab.graphics.barcode.code128 import Code128
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.pdfdoc import PDFObject, PDFObjectReference, PDFResourceDictionary
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas

__all__ = [
    "PdfWriter",
    "TTFError",
    "TTFont",
    "code128_modules",
    "load_truetype",
    "qr_modules",
    "to_unicode_cmap",
]

# Images are stored binary (Flate/DCT) rather than ASCII85: a quarter smaller and faster to write.
rl_config.useA85 = 0


def _utf16_hex(code: int) -> str:
    """A code point as UTF-16BE hex, a surrogate pair beyond the BMP (what a ToUnicode CMap must hold)."""
    if code <= 0xFFFF:
        return f"{code:04X}"
    v = code - 0x10000
    return f"{0xD800 + (v >> 10):04X}{0xDC00 + (v & 0x3FF):04X}"


def to_unicode_cmap(fontname: str, subset: Sequence[int]) -> str:
    """ReportLab's ToUnicode CMap for one 256-code subset, with surrogate pairs beyond the BMP.

    Identical to ReportLab's own for BMP characters, so files without such characters keep their bytes.
    """
    cmap = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo",
        f"<< /Registry ({fontname})",
        f"/Ordering ({fontname})",
        "/Supplement 0",
        ">> def",
        f"/CMapName /{fontname} def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        f"<00> <{len(subset) - 1:02X}>",
        "endcodespacerange",
        f"{len(subset)} beginbfchar",
        *(f"<{i:02X}> <{_utf16_hex(v)}>" for i, v in enumerate(subset)),
        "endbfchar",
        "endcmap",
        "CMapName currentdict /CMap defineresource pop",
        "end",
        "end",
    ]
    return "\n".join(cmap)


# TTFont.addObjects looks the CMap writer up in its module when a document is saved.
ttfonts.makeToUnicodeCMap = to_unicode_cmap


def load_truetype(name: str, path: Path, index: int) -> tuple[TTFont, dict[int, int], dict[int, int], int]:
    """Parses and registers a TrueType face; returns it with its char->glyph map, widths and default width.

    Raises ReportLab's TTFError, OSError or ValueError for a file that cannot be embedded.
    """
    ttf = TTFont(name, str(path), subfontIndex=index)
    pdfmetrics.registerFont(ttf)
    face = ttf.face
    return ttf, face.charToGlyph, face.charWidths, int(face.defaultWidth)


@lru_cache(maxsize=8)
def code128_modules(value: str) -> tuple[int, ...]:
    """Bar and space widths in modules, starting with a bar (ReportLab's Code 128 encoder, auto subsets).

    Cached: a piece's envelope and letter pages print the same number, one after the other.
    """
    bc = Code128(value, quiet=0)
    bc.validate()
    bc.encode()
    bc.decompose()
    return tuple(ord(ch.lower()) - ord("a") + 1 for ch in bc.decomposed)


# One fixed mask pattern: any of the eight reads the same in every scanner, and choosing the "best" one costs
# ReportLab's encoder eight trial encodings (3 ms a code instead of 0.25 ms, on every piece).
QR_MASK = 2


def qr_modules(value: str) -> tuple[tuple[bool, ...], ...]:
    """The dark modules of a QR code of value (error correction M, the smallest version), row by row."""
    qr = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    qr.addData(value)
    qr.version = qr.calculate_version()
    qr.makeImpl(False, QR_MASK)
    return tuple(tuple(bool(dark) for dark in row) for row in qr.modules)


class _Raw(PDFObject):  # type: ignore[misc]
    """A pre-formatted PDF value shared by every page (boxes), formatted once instead of per page."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def format(self, document: object) -> bytes:
        return self.data


class PdfWriter:
    """One PDF file being written: forms for the static parts, pages of form + per-piece operators.

    `canvas` is there for ReportLab's public drawing API (shapes, images) inside forms; raw operators go
    through `append`, text codes through `encode`. `memo` holds per-document caches (shown strings,
    barcodes), which must not outlive the document because subset codes are assigned per document.
    """

    __slots__ = ("_doc", "_media", "_resources", "_trim", "canvas", "memo")

    def __init__(
        self,
        path: Path,
        *,
        media: tuple[float, float],
        bleed: float,
        title: str,
        author: str,
        subject: str,
        creator: str,
        producer: str,
        initial_font: str,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        w, h = media
        # invariant=True fixes the document id and dates, so the same input gives the same bytes.
        # The initial font is the kit's own, so that ReportLab's page preamble never pulls in an unembedded
        # Helvetica (print shops reject unembedded fonts).
        c = Canvas(
            str(path),
            pagesize=(w, h),
            invariant=True,
            pageCompression=1,
            pdfVersion=(1, 6),
            initialFontName=initial_font,
        )
        c.setTrimBox((bleed, bleed, w - bleed, h - bleed))
        c.setBleedBox((0, 0, w, h))
        c.setTitle(title)
        c.setAuthor(author)
        c.setSubject(subject)
        c.setCreator(creator)
        c.setProducer(producer)
        self.canvas = c
        self._doc = c._doc
        self._media = _Raw(f"[0 0 {w:.4f} {h:.4f}]".encode())
        self._trim = _Raw(f"[{bleed:.4f} {bleed:.4f} {w - bleed:.4f} {h - bleed:.4f}]".encode())
        self._resources: dict[str, PDFObjectReference] = {}
        self.memo: dict[str, Any] = {}

    def append(self, ops: str) -> None:
        """Appends raw PDF operators to the page or form being drawn."""
        self.canvas._code.append(ops)

    def encode(self, ttf: TTFont, text: str) -> list[tuple[str, bytes]]:
        """Text in a TrueType font as (font resource name, one-byte codes) per subset, for `Tf ... Tj`."""
        doc = self._doc
        return [(ttf.getSubsetInternalName(s, doc), data) for s, data in ttf.splitString(text, doc)]

    def begin_form(self, name: str) -> None:
        """Starts a form XObject holding a page design's static parts (drawn once per file)."""
        self.canvas.beginForm(name)

    def end_form(self) -> None:
        """Ends the form started by begin_form."""
        self.canvas.endForm()

    def page(self, form: str, ops: str) -> None:
        """One page: the form, then the piece's own operators.

        Every page of a form gets the same Resources object and box arrays: ReportLab would otherwise build
        and format a resource dictionary per page, the largest per-page cost in time and bytes.
        """
        c = self.canvas
        c.doForm(form)
        c._code.append(ops)
        c.showPage()
        doc = self._doc
        pdf_page = doc.Pages.pages[-1]
        ref = self._resources.get(form)
        if ref is None:
            res = PDFResourceDictionary()
            res.basicFonts()
            res.allProcs()
            res.XObject = doc.xobjDict([form])
            ref = self._resources[form] = doc.Reference(res)
        pdf_page.Resources = ref
        pdf_page.MediaBox = self._media
        pdf_page.BleedBox = self._media
        pdf_page.TrimBox = self._trim

    def save(self) -> None:
        """Writes the file."""
        self.canvas.save()
