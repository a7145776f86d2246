"""Printer's marks: crop marks outside the trim, fold marks on letters, and the piece barcode (Code 128, whose
bar widths come from outreach.render.pdfwriter, the only module that touches ReportLab's internals)."""

from __future__ import annotations

from outreach.render.draw import BLEED_MM, Page, mm
from outreach.render.pdfwriter import code128_modules, qr_modules

# A QR code keeps a quiet zone of four modules on every side (ISO/IEC 18004).
QR_QUIET = 4
# Smallest printed QR box (quiet zone included): 0.4 mm modules for a version-1 code, which phones and
# counter scanners read from a hand-held letter.
QR_MIN_MM = 12.0
# Registration colour: all four plates, so the marks show on every separation.
REGISTRATION = "1 1 1 1 K"
MIN_MODULE_MM = 0.19  # narrowest bar the post's and inserters' scanners read reliably
MAX_MODULE_MM = 0.33

# Envelope -> fold positions on an A4 letter (mm from the top), and a vertical fold (mm from the left) if any.
FOLDS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "DL": ((99.0, 198.0), ()),
    "ZL": ((99.0, 198.0), ()),
    "B6": ((99.0, 198.0), (105.0,)),
    "C5": ((148.5,), ()),
    "C4": ((), ()),
}


def crop_marks(page: Page) -> str:
    """Crop marks in the bleed corners, on the trim lines, stopping 0.5 mm short of the trim."""
    b = mm(BLEED_MM)
    gap = mm(0.5)
    w, h = page.media
    x0, x1 = b, w - b
    y0, y1 = b, h - b
    segs = [
        # bottom-left
        (0, y0, b - gap, y0),
        (x0, 0, x0, b - gap),
        # bottom-right
        (w, y0, w - b + gap, y0),
        (x1, 0, x1, b - gap),
        # top-left
        (0, y1, b - gap, y1),
        (x0, h, x0, h - b + gap),
        # top-right
        (w, y1, w - b + gap, y1),
        (x1, h, x1, h - b + gap),
    ]
    ops = ["q", REGISTRATION, "0.25 w"]
    ops += [f"{a:.2f} {c:.2f} m {d:.2f} {e:.2f} l S" for a, c, d, e in segs]
    ops.append("Q")
    return "\n".join(ops)


def fold_marks(page: Page, envelope: str) -> str:
    """Short ticks at both side edges (and top/bottom for a vertical fold) where the letter is folded."""
    across, down = FOLDS.get(envelope, FOLDS["DL"])
    tick = 5.0
    ops = ["q", "0 0 0 0.6 K", "0.3 w"]
    for y in across:
        yy = page.y(y)
        ops.append(f"{page.x(0):.2f} {yy:.2f} m {page.x(tick):.2f} {yy:.2f} l S")
        ops.append(f"{page.x(page.width_mm - tick):.2f} {yy:.2f} m {page.x(page.width_mm):.2f} {yy:.2f} l S")
    for x in down:
        xx = page.x(x)
        ops.append(f"{xx:.2f} {page.y(0):.2f} m {xx:.2f} {page.y(tick):.2f} l S")
        ops.append(
            f"{xx:.2f} {page.y(page.height_mm - tick):.2f} m {xx:.2f} {page.y(page.height_mm):.2f} l S"
        )
    ops.append("Q")
    return "\n".join(ops)


def code128_width_mm(value: str, module_mm: float = MIN_MODULE_MM) -> float:
    """Printed width of a barcode at a module width (for preflight)."""
    return sum(code128_modules(value)) * module_mm


def barcode_ops(value: str, x: float, y: float, w: float, h: float) -> str:
    """Code 128 bars of value, fitted into the box (pt, bottom-left origin), in black only."""
    modules = code128_modules(value)
    total = sum(modules)
    module = min(w / total, mm(MAX_MODULE_MM))
    ops = ["0 0 0 1 k"]
    pos = x
    for i, width in enumerate(modules):
        bw = width * module
        if i % 2 == 0:
            ops.append(f"{pos:.2f} {y:.2f} {bw:.2f} {h:.2f} re")
        pos += bw
    ops.append("f")
    return "\n".join(ops)


def qr_ops(value: str, x: float, y: float, size: float) -> str:
    """A QR code of value in a square box (pt, bottom-left origin), quiet zone inside the box, black only."""
    rows = qr_modules(value)
    count = len(rows)
    module = size / (count + 2 * QR_QUIET)
    left = x + QR_QUIET * module
    top = y + size - QR_QUIET * module
    ops = ["0 0 0 1 k"]
    for r, row in enumerate(rows):
        yy = top - (r + 1) * module
        c = 0
        while c < count:  # one rectangle per run of dark modules in a row
            if not row[c]:
                c += 1
                continue
            start = c
            while c < count and row[c]:
                c += 1
            ops.append(f"{left + start * module:.3f} {yy:.3f} {(c - start) * module:.3f} {module:.3f} re")
    ops.append("f")
    return "\n".join(ops)
