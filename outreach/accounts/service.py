"""Organisations: the union, the print shops it hands batches to, and merchants — add, list, look up.

A campaign's print shop is one of these (kind printshop); naming an unknown one is refused with the names
of those that exist, never created on the fly (a typo would otherwise hand batches to nobody).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences import normalise
from outreach.accounts.models import ORGANISATION_KINDS, Organisation
from outreach.errors import Conflict, InputError, NotFound
from outreach.i18n import _

MAX_NAME = 100
MAX_CONTACT = 100
MAX_PHONE = 30
MAX_ADDRESS = 300
KNOWN_SHOWN = 20


def _clean_name(name: str) -> str:
    try:
        cleaned = normalise.text(name, max_length=MAX_NAME)
    except normalise.Malformed:
        raise InputError(_("an organisation's name is at most {limit} characters", limit=MAX_NAME)) from None
    if cleaned is None:
        raise InputError(_("an organisation needs a name"))
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise InputError(_("an organisation's name must not contain control characters"))
    return cleaned


def _optional(value: str | None, *, limit: int, too_long: str) -> str | None:
    if value is None:
        return None
    try:
        return normalise.text(value, max_length=limit)
    except normalise.Malformed:
        raise InputError(too_long) from None


def add_organisation(
    *,
    session: Session,
    kind: str,
    name: str,
    address: str | None = None,
    contact: str | None = None,
    phone: str | None = None,
    licence_no: str | None = None,
) -> Organisation:
    """Adds an organisation; Conflict if the name is taken."""
    if kind not in ORGANISATION_KINDS:
        raise InputError(
            _(
                "an organisation's kind is one of {choices}, not {value}",
                choices=", ".join(ORGANISATION_KINDS),
                value=kind,
            )
        )
    cleaned = _clean_name(name)
    if session.scalar(select(Organisation.id).where(Organisation.name == cleaned)) is not None:
        raise Conflict(_("an organisation named {name} exists already", name=cleaned))
    code = None
    if licence_no is not None and licence_no.strip():
        try:
            code = normalise.credit_code(licence_no)
        except normalise.Malformed as exc:
            raise InputError(str(exc)) from None
    organisation = Organisation(
        kind=kind,
        name=cleaned,
        address=_optional(
            address,
            limit=MAX_ADDRESS,
            too_long=_("an address is at most {limit} characters", limit=MAX_ADDRESS),
        ),
        contact=_optional(
            contact,
            limit=MAX_CONTACT,
            too_long=_("a contact is at most {limit} characters", limit=MAX_CONTACT),
        ),
        phone=_optional(
            phone,
            limit=MAX_PHONE,
            too_long=_("a phone number is at most {limit} characters", limit=MAX_PHONE),
        ),
        licence_no=code,
        active=True,
    )
    session.add(organisation)
    session.flush()
    return organisation


def list_organisations(*, session: Session, kind: str | None = None) -> Sequence[Organisation]:
    """Lists organisations (of one kind, if given) by name."""
    query = select(Organisation).order_by(Organisation.name)
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    return session.scalars(query).all()


def get_organisation(*, session: Session, organisation_id: int) -> Organisation:
    """Gets an organisation by id; NotFound if there is none."""
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(_("no organisation with id {id}", id=organisation_id))
    return organisation


def get_organisation_by_name(*, session: Session, name: str, kind: str | None = None) -> Organisation:
    """Gets an organisation by name (of one kind, if given); NotFound names the ones that exist."""
    try:
        cleaned = normalise.text(name, max_length=MAX_NAME) or ""
    except normalise.Malformed:
        cleaned = ""  # longer than any stored name: not found, said below
    query = select(Organisation).where(Organisation.name == cleaned)
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    found = session.scalar(query)
    if found is not None:
        return found
    if kind == "printshop":
        known = [o.name for o in list_organisations(session=session, kind="printshop")[:KNOWN_SHOWN]]
        if known:
            raise NotFound(
                _("no print shop named {name} (print shops: {known})", name=name, known=", ".join(known))
            )
        raise NotFound(
            _(
                "no print shop named {name}: there are none yet; add one with `outreach printshop add`",
                name=name,
            )
        )
    raise NotFound(_("no organisation named {name}", name=name))


def print_shop(*, session: Session, name: str) -> Organisation:
    """The print shop of that name; NotFound (naming the known ones) if there is none, or it is inactive."""
    shop = get_organisation_by_name(session=session, name=name, kind="printshop")
    if not shop.active:
        raise InputError(_("print shop {name} is inactive", name=shop.name))
    return shop
