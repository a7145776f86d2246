"""Preflight: refuses a kit that would not print or post (reserved zones, low-resolution artwork, text that
overflows, a page without the piece barcode) when it is loaded, not on the 4,000th piece."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from outreach.errors import KitError
from outreach.i18n import _
from outreach.render.draw import BLEED_MM
from outreach.render.elements import NUMBER_TEXT_MM, Overflow, fit_text, missing_glyphs, render_text
from outreach.render.envelope import Zone, postage_box, reserved_zones, sender_boxes, sender_extent
from outreach.render.kit import Element, Kit
from outreach.render.marks import QR_MIN_MM, code128_width_mm
from outreach.render.recipient import base_variables, piece_variables, sample_recipients

MIN_DPI = 300.0
SAMPLE_NUMBER = "R000000-000000"


def image_dpi(el: Element) -> tuple[float, str]:
    """Effective resolution of artwork at its placed size (the lower of both axes), and its colour mode."""
    assert el.file is not None
    with Image.open(el.file) as im:
        px_w, px_h = im.size
        mode = im.mode
    return min(px_w / (el.w / 25.4), px_h / (el.h / 25.4)), mode


def _page_problems(kit: Kit, label: str, elements: Sequence[Element], size: tuple[float, float]) -> list[str]:
    problems: list[str] = []
    width, height = size
    numbers = [el for el in elements if el.kind == "number"]
    if label != "envelope.flap" and len(numbers) != 1:
        problems.append(
            _(
                "{where}: needs exactly one `number` element (piece number and barcode), has {count}",
                where=label,
                count=len(numbers),
            )
        )
    for el in elements:
        b = BLEED_MM
        if (
            el.x < -b - 0.01
            or el.y < -b - 0.01
            or el.x + el.w > width + b + 0.01
            or el.y + el.h > height + b + 0.01
        ):
            problems.append(
                _("{where}: lies outside the page and its {bleed:g} mm bleed", where=el.where, bleed=b)
            )
        if el.kind == "image":
            dpi, mode = image_dpi(el)
            if dpi < MIN_DPI - 0.5:
                problems.append(
                    _(
                        "{where}: artwork is {dpi:.0f} dpi at its placed size; at least 300 needed",
                        where=el.where,
                        dpi=dpi,
                    )
                )
            if el.file is not None and el.file.suffix.lower() in (".jpg", ".jpeg") and mode != "CMYK":
                problems.append(
                    _("{where}: JPEG artwork must be CMYK for press, not {mode}", where=el.where, mode=mode)
                )
        if el.kind == "qr" and min(el.w, el.h) < QR_MIN_MM:
            problems.append(
                _(
                    "{where}: QR code area {w:g}×{h:g} mm too small (needs {need:g}×{need:g} mm)",
                    where=el.where,
                    w=el.w,
                    h=el.h,
                    need=QR_MIN_MM,
                )
            )
        if el.kind == "number":
            need = code128_width_mm(SAMPLE_NUMBER)
            if el.w < need or el.h < NUMBER_TEXT_MM + 5:
                problems.append(
                    _(
                        "{where}: barcode area {w:g}×{h:g} mm too small (needs {need_w:.1f}×{need_h:g} mm)",
                        where=el.where,
                        w=el.w,
                        h=el.h,
                        need_w=need,
                        need_h=NUMBER_TEXT_MM + 5,
                    )
                )
    return problems


def _zone_problems(kit: Kit) -> list[str]:
    zones = reserved_zones(*kit.envelope_mm)
    problems: list[str] = []
    placed = [(el.where, el.x, el.y, el.w, el.h) for el in kit.front]
    (sx, sy, sw, sh), (cx, cy, cw, ch) = sender_boxes(kit)
    placed += [("sender block", sx, sy, sw, sh), ("sender postcode", cx, cy, cw, ch)]
    placed.append(("postage mark", *postage_box(kit)))
    for where, x, y, w, h in placed:
        for zone in zones:
            if zone.overlaps(x, y, w, h):
                problems.append(_("{where}: enters the {zone}", where=where, zone=zone.name))
    # The sender's text (the union profile's address and name) must not run into the kit's own elements.
    text_box = Zone("sender", *sender_extent(kit))
    for el in kit.front:
        if el.kind in ("text", "number", "image") and text_box.overlaps(el.x, el.y, el.w, el.h):
            problems.append(
                _(
                    "{where}: overlaps the sender's address and name (the union profile), "
                    "{left:.0f}–{right:.0f} mm from the left, {top:.0f}–{bottom:.0f} mm from the top",
                    where=el.where,
                    left=text_box.x,
                    right=text_box.x + text_box.w,
                    top=text_box.y,
                    bottom=text_box.y + text_box.h,
                )
            )
    for el in kit.flap:
        if el.y + el.h > kit.flap_depth + 0.01:
            problems.append(
                _(
                    "{where}: flap artwork must lie within the flap ({depth:g} mm from the top)",
                    where=el.where,
                    depth=kit.flap_depth,
                )
            )
    return problems


def _text_problems(kit: Kit) -> list[str]:
    problems: list[str] = []
    base = base_variables(kit.title, kit.sender, kit.variables, None)
    samples = sample_recipients(2)
    pages = [kit.front, kit.back + kit.flap, *kit.pages]
    for elements in pages:
        for el in elements:
            if el.kind != "text":
                continue
            for r in samples if el.variable else samples[:1]:
                try:
                    text = render_text(kit, el, piece_variables(base, r))
                    fit_text(kit, el, text)
                except (KitError, Overflow) as exc:
                    problems.append(str(exc).removeprefix(_("kit {kit}: ", kit=kit.name)))
                    break
                if not el.variable:
                    missing = missing_glyphs(kit, el, text)
                    if missing:
                        problems.append(
                            _("{where}: no configured font can draw {chars!r}", where=el.where, chars=missing)
                        )
    return problems


def _sms_problems(kit: Kit) -> list[str]:
    from outreach.render.sms import render_sms

    problems = []
    for msg in render_sms(kit, sample_recipients(2)):
        if msg.error:
            problems.append(
                _(
                    "{where}: sample message {number}: {problem}",
                    where=kit.sms_where,
                    number=msg.number,
                    problem=msg.error,
                )
            )
    return problems


def check(kit: Kit) -> list[str]:
    """Every problem found in the kit, one line each (empty when the kit is fine)."""
    if kit.channel == "sms":
        return _sms_problems(kit)
    problems = _page_problems(kit, "envelope.front", kit.front, kit.envelope_mm)
    problems += _page_problems(kit, "envelope.back", kit.back, kit.envelope_mm)
    problems += _page_problems(kit, "envelope.flap", kit.flap, kit.envelope_mm)
    for i, page in enumerate(kit.pages):
        problems += _page_problems(kit, _("letter page {page}", page=i + 1), page, kit.paper_mm)
    problems += _zone_problems(kit)
    problems += _text_problems(kit)
    return problems


def preflight(kit: Kit) -> None:
    """Raises KitError listing every problem of the kit, or returns when it is fit for press."""
    problems = check(kit)
    if problems:
        raise KitError(_("kit {kit}: preflight failed:", kit=kit.name) + "\n  " + "\n  ".join(problems))
