"""Ad slots: the kit declares them (`[[ad_slot]]` in kit.toml, naming the face and the image that is the
slot), and a booking's artwork takes the place of that image in the rendered piece. The artwork passes the
kit's own preflight (300 dpi at the placed size, CMYK, bleed, the envelope's reserved zones)."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from outreach.errors import InputError, KitError
from outreach.i18n import _
from outreach.render import Kit
from outreach.render.kit import MANIFEST, Element
from outreach.render.preflight import check

# How far artwork may differ from its slot's proportions before it would print visibly stretched.
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class AdSlot:
    """One bookable place of a kit: which face, where (mm from the trim's top-left), how big."""

    name: str
    label: str
    side: str
    x: float
    y: float
    w: float
    h: float
    fallback: Path
    # The kit's own image element that is the slot (its identity: the same file elsewhere is no slot).
    element: Element | None = field(default=None, compare=False, repr=False)


def _faces(kit: Kit, data: Mapping[str, object]) -> dict[str, tuple[Element, ...]]:
    faces = {"envelope.front": kit.front, "envelope.back": kit.back, "envelope.flap": kit.flap}
    letter = data.get("letter")
    pages = letter.get("page", []) if isinstance(letter, dict) else []
    for i, elements in enumerate(kit.pages):
        raw = pages[i] if i < len(pages) and isinstance(pages[i], dict) else {}
        faces[f"letter.{raw.get('name') or i + 1}"] = elements
    return faces


def _same_file(a: Path | None, b: Path) -> bool:
    return a is not None and a.resolve() == b.resolve()


def slots_of(kit: Kit) -> tuple[AdSlot, ...]:
    """The kit's ad slots, in the order it declares them (none for a kit that declares none)."""
    return _slots(kit.path, kit.digest, kit)


@lru_cache(maxsize=16)
def _slots(path: Path, digest: str, kit: Kit) -> tuple[AdSlot, ...]:
    data = tomllib.loads((path / MANIFEST).read_text(encoding="utf-8"))
    faces = _faces(kit, data)
    declared = data.get("ad_slot", [])
    out: list[AdSlot] = []
    for i, raw in enumerate(declared if isinstance(declared, list) else []):
        where = f"{MANIFEST} [[ad_slot]] {i + 1}"
        name, face, file = (str(raw.get(k, "")) for k in ("name", "face", "file"))
        elements = faces.get(face)
        if elements is None:
            raise KitError(
                _(
                    "kit {kit}: {where}: face {face!r} is not one of {faces}",
                    kit=kit.name,
                    where=where,
                    face=face,
                    faces=", ".join(faces),
                )
            )
        matches = [el for el in elements if el.kind == "image" and _same_file(el.file, path / file)]
        if len(matches) != 1 or not name:
            raise KitError(
                _(
                    "kit {kit}: {where}: a slot needs a name and one image of {face} with file {file!r}",
                    kit=kit.name,
                    where=where,
                    face=face,
                    file=file,
                )
            )
        el = matches[0]
        assert el.file is not None
        out.append(
            AdSlot(name, str(raw.get("label") or name), face, el.x, el.y, el.w, el.h, el.file.resolve(), el)
        )
    return tuple(out)


def slot_named(kit: Kit, name: str) -> AdSlot:
    """The kit's slot called `name`; InputError naming the slots there are."""
    for slot in slots_of(kit):
        if slot.name == name:
            return slot
    known = ", ".join(s.name for s in slots_of(kit)) or _("none")
    raise InputError(
        _("kit {kit} has no ad slot {slot!r} (slots: {known})", kit=kit.name, slot=name, known=known)
    )


def with_artwork(kit: Kit, artwork: Mapping[str, Path]) -> Kit:
    """The kit with booked artwork (slot name -> image file) in place of the union's own."""
    if not artwork:
        return kit
    booked = {id(slot.element): artwork[slot.name] for slot in slots_of(kit) if slot.name in artwork}

    def swap(elements: tuple[Element, ...]) -> tuple[Element, ...]:
        return tuple(
            dataclasses.replace(el, file=booked[id(el)]) if id(el) in booked else el for el in elements
        )

    return dataclasses.replace(
        kit,
        front=swap(kit.front),
        back=swap(kit.back),
        flap=swap(kit.flap),
        pages=tuple(swap(page) for page in kit.pages),
    )


def artwork_problems(kit: Kit, slot: AdSlot, file: Path) -> list[str]:
    """What keeps this artwork from printing in this slot: the kit's preflight on it, and its proportions."""
    try:
        with Image.open(file) as im:
            im.verify()
        with Image.open(file) as im:
            px_w, px_h = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return [_("the artwork is not an image that can be read ({error})", error=type(exc).__name__)]
    problems: list[str] = []
    want, have = slot.w / slot.h, px_w / px_h
    if abs(have - want) / want > ASPECT_TOLERANCE:
        problems.append(
            _(
                "the artwork is {pw}×{ph} pixels, proportions {have:.2f}; slot {slot} is {w:g}×{h:g} mm "
                "({want:.2f}) and it would print stretched",
                pw=px_w,
                ph=px_h,
                have=have,
                slot=slot.name,
                w=slot.w,
                h=slot.h,
                want=want,
            )
        )
    problems += check(with_artwork(kit, {slot.name: file}))
    return problems
