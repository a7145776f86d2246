"""The envelope front's standard parts (GB/T 1416): postcode boxes, postage mark, sender; and the zones
that must stay blank for the post's machines. Draws through outreach.render.pdfwriter (the only module that
touches ReportLab's internals) and ReportLab's public canvas API."""

from __future__ import annotations

from dataclasses import dataclass

from outreach.i18n import _
from outreach.render.draw import Page, cmyk_fill, mm, text_ops
from outreach.render.kit import Kit
from outreach.render.layout import Line, TextStyle, set_text
from outreach.render.pdfwriter import PdfWriter

# Postcode boxes: 8 x 10 mm, 2 mm apart, the first 20 mm from the left and 10 mm from the top edge.
BOX_W, BOX_H, BOX_GAP, BOX_LEFT, BOX_TOP = 8.0, 10.0, 2.0, 20.0, 10.0
POSTAGE_W, POSTAGE_H, POSTAGE_MARGIN = 36.0, 22.0, 6.0


@dataclass(frozen=True, slots=True)
class Zone:
    """A rectangle on the envelope front (mm from the trim's top-left) where the kit may print nothing."""

    name: str
    x: float
    y: float
    w: float
    h: float

    def overlaps(self, x: float, y: float, w: float, h: float) -> bool:
        """True when the rectangle shares area with the zone (touching edges is fine)."""
        return x < self.x + self.w and self.x < x + w and y < self.y + self.h and self.y < y + h


def reserved_zones(width: float, height: float) -> tuple[Zone, Zone]:
    """The 90 x 26 mm machine-reading zone and the barcode strip 55-160 mm from the right, 20 mm high."""
    return (
        Zone(_("machine-reading zone (90×26 mm, top left)"), 0.0, 0.0, 90.0, 26.0),
        Zone(
            _("post barcode strip (55–160 mm from the right edge, 20 mm from the bottom)"),
            max(0.0, width - 160.0),
            height - 20.0,
            160.0 - 55.0 - max(0.0, 160.0 - width),
            20.0,
        ),
    )


def sender_boxes(kit: Kit) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float]]:
    """Where the sender lines and the sender postcode go: above the barcode strip, and right of it."""
    w, h = kit.envelope_mm
    return (w - 110.0, h - 35.0, 102.0, 13.0), (w - 53.0, h - 16.0, 46.0, 8.0)


def sender_lines(kit: Kit, ink: str = "0 0 0 1 k") -> tuple[list[Line], float]:
    """The sender block set right-aligned in its box: address, then name and phone (and the height, pt)."""
    (_, _, sw, _), _ = sender_boxes(kit)
    style = TextStyle(kit.fonts["sans"], 7.5, 1.35, ink, align="right")
    phone = f"　电话 {kit.sender['phone']}" if kit.sender.get("phone") else ""
    return set_text(f"{kit.sender['address']}\n{kit.sender['name']}{phone}", style, mm(sw))


def sender_extent(kit: Kit) -> tuple[float, float, float, float]:
    """The rectangle (mm) the sender block's text actually covers, for preflight."""
    (sx, sy, sw, sh), _ = sender_boxes(kit)
    lines, _height = sender_lines(kit)
    left = min((ln.x for ln in lines), default=mm(sw)) / mm(1)
    return sx + left, sy, sw - left, sh


def postage_box(kit: Kit) -> tuple[float, float, float, float]:
    """The postage-paid / 商函 mark at the top right."""
    w, _ = kit.envelope_mm
    return (w - POSTAGE_MARGIN - POSTAGE_W, POSTAGE_MARGIN, POSTAGE_W, POSTAGE_H)


def draw_front_standard(writer: PdfWriter, page: Page, kit: Kit) -> None:
    """Draws the static standard parts of the front (once per file, into the front's form)."""
    canvas = writer.canvas
    red = kit.colours["postcode"]
    canvas.setStrokeColorCMYK(*(v / 100 for v in red))
    canvas.setLineWidth(0.8)
    for i in range(6):
        bx = BOX_LEFT + i * (BOX_W + BOX_GAP)
        canvas.rect(page.x(bx), page.y(BOX_TOP + BOX_H), mm(BOX_W), mm(BOX_H), stroke=1, fill=0)
    # Postage mark: a double frame with the kit's lines, in the postcode red.
    px, py, pw, ph = postage_box(kit)
    canvas.setLineWidth(1.0)
    canvas.rect(page.x(px), page.y(py + ph), mm(pw), mm(ph), stroke=1, fill=0)
    canvas.setLineWidth(0.4)
    canvas.rect(page.x(px + 1.2), page.y(py + ph - 1.2), mm(pw - 2.4), mm(ph - 2.4), stroke=1, fill=0)
    chain = kit.fonts.get("heading") or kit.fonts["sans"]
    n = max(1, len(kit.postage))
    sizes = [13.0] + [7.5] * (n - 1)
    block_h = sum(s * 1.3 for s in sizes)
    top = page.y(py) - (mm(ph) - block_h) / 2
    for line, size in zip(kit.postage, sizes, strict=False):
        style = TextStyle(chain, size, 1.3, cmyk_fill(red), align="center")
        lines, _height = set_text(line, style, mm(pw))
        writer.append(text_ops(writer, lines, page.x(px), top))
        top -= size * 1.3
    # Sender: name and address above the post's barcode strip, postcode in the bottom-right corner.
    (sx, sy, _sw, _), (cx, cy, cw, _) = sender_boxes(kit)
    ink = cmyk_fill(kit.colours.get("sender", kit.colours["black"]))
    lines, _height = sender_lines(kit, ink)
    writer.append(text_ops(writer, lines, page.x(sx), page.y(sy)))
    style = TextStyle(kit.fonts["sans"], 8.0, 1.2, ink, align="right")
    lines, _height = set_text(f"邮政编码：{kit.sender['postcode']}", style, mm(cw))
    writer.append(text_ops(writer, lines, page.x(cx), page.y(cy)))


def postcode_ops(writer: PdfWriter, page: Page, kit: Kit, postcode: str) -> str:
    """The recipient's postcode, one digit centred in each red box (per piece)."""
    chain = kit.fonts["sans"]
    font = chain.primary
    size = 16.0
    out = ["BT", cmyk_fill(kit.colours["black"]), "0 Tc"]
    for i, digit in enumerate(postcode[:6]):
        bx = BOX_LEFT + i * (BOX_W + BOX_GAP)
        dw = font.width(digit, size)
        x = page.x(bx) + (mm(BOX_W) - dw) / 2
        y = page.y(BOX_TOP + BOX_H) + (mm(BOX_H) - size * 0.72) / 2
        for name, data in writer.encode(font.ttf, digit):
            out.append(f"1 0 0 1 {x:.2f} {y:.2f} Tm {name} {size:.1f} Tf")
            out.append(f"<{data.hex()}> Tj")
    out.append("ET")
    return "\n".join(out)
