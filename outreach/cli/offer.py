"""`outreach offer`: merchants, a campaign period's ad slots and their bookings, the redemption report."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from outreach import db
from outreach.accounts import audit
from outreach.accounts import service as accounts
from outreach.campaigns import service as campaigns
from outreach.cli.output import console, safe
from outreach.errors import InputError
from outreach.i18n import _, translate
from outreach.money import format_fen, parse_yuan
from outreach.offers import reports
from outreach.offers import service as offers

app = typer.Typer(
    help=_("Merchant offers: merchants, ad slots booked per period, redemptions."), no_args_is_help=True
)

# The audit log names the command line as where a change came from.
CLI_ACTOR = audit.Actor(username="cli", address="cli")


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(_("{what} {value!r} is not a date like 2027-03-01", what=what, value=text)) from None


@app.command(
    "merchant-add", help=_("Adds a merchant (then give it accounts: outreach user add --role merchant).")
)
def merchant_add(
    name: str = typer.Argument(..., help=_("The merchant's name.")),
    licence: str = typer.Option(..., "--licence", help=_("Its unified social credit code (18 characters).")),
    address: str | None = typer.Option(None, "--address", help=_("Its address.")),
    contact: str | None = typer.Option(None, "--contact", help=_("The person to call.")),
    phone: str | None = typer.Option(None, "--phone", help=_("Its phone number.")),
) -> None:
    """Adds a merchant."""
    with db.session_scope(db.ensure_schema()) as session:
        merchant = offers.add_merchant(
            session=session, name=name, licence_no=licence, address=address, contact=contact, phone=phone
        )
        audit.record(
            session=session,
            actor=CLI_ACTOR,
            action="merchant.add",
            object_type="organisation",
            object_id=merchant.id,
            after={"name": merchant.name, "kind": merchant.kind, "licence_no": merchant.licence_no},
        )
        console.print(_("merchant {name} added (id {id})", name=safe(merchant.name), id=merchant.id))


@app.command("merchants", help=_("Lists the merchants."))
def merchants() -> None:
    """Lists the merchants."""
    with db.session_scope(db.ensure_schema()) as session:
        table = Table()
        for header in (_("id"), _("name"), _("licence number"), _("contact"), _("phone")):
            table.add_column(header)
        for m in accounts.list_organisations(session=session, kind="merchant"):
            table.add_row(
                str(m.id), safe(m.name), safe(m.licence_no or ""), safe(m.contact or ""), safe(m.phone or "")
            )
        console.print(table)


@app.command("slots", help=_("Shows a campaign period's ad slots: booked, or the union's own artwork."))
def slots(
    campaign: str = typer.Argument(..., help=_("Campaign name or id.")),
    period: str = typer.Argument(..., help=_("Quarter, e.g. 2027-Q1.")),
) -> None:
    """Shows the slots of a period, as the approver sees them."""
    with db.session_scope(db.ensure_schema()) as session:
        found = campaigns.get_by_ref(session=session, ref=campaign)
        table = Table(title=safe(f"{found.name} {period}"))
        for header in (_("slot"), _("where"), _("merchant"), _("offer"), _("valid"), _("ad fee")):
            table.add_column(header)
        for line in offers.slot_lines(session=session, campaign=found, period=period):
            booked = line.merchant is not None
            table.add_row(
                safe(line.slot),
                safe(line.label),
                safe(line.merchant) if booked else _("(the union's own artwork)"),
                safe(line.offer_text or ""),
                f"{line.valid_from} – {line.valid_until}" if booked else "",
                format_fen(line.fee_fen) if booked else "",
            )
        console.print(table)


@app.command("book", help=_("Books an ad slot of a campaign period for a merchant's offer."))
def book(
    campaign: str = typer.Argument(..., help=_("Campaign name or id.")),
    period: str = typer.Argument(..., help=_("Quarter, e.g. 2027-Q1.")),
    slot: str = typer.Argument(..., help=_("The slot's name (see outreach offer slots).")),
    merchant: str = typer.Option(..., "--merchant", help=_("The merchant's name.")),
    artwork: Path = typer.Option(
        ..., "--artwork", help=_("The artwork: CMYK JPEG (or PNG), 300 dpi at the slot's size.")
    ),
    offer_text: str = typer.Option(..., "--offer", help=_("The offer, as the counter shows it.")),
    valid_from: str = typer.Option(..., "--from", help=_("First day the offer holds (2027-03-01).")),
    valid_until: str = typer.Option(..., "--until", help=_("Last day the offer holds (2027-05-31).")),
    fee: str = typer.Option("0", "--fee", help=_("The ad fee in yuan (income of the period).")),
    replace: bool = typer.Option(False, "--replace", help=_("Replace the slot's booking of the period.")),
) -> None:
    """Books a slot."""
    if not artwork.is_file():
        raise InputError(_("artwork file {path} not found", path=str(artwork)))
    fee_fen = parse_yuan(fee, what=_("ad fee"))
    with db.session_scope(db.ensure_schema()) as session:
        found = campaigns.get_by_ref(session=session, ref=campaign)
        booking = offers.book(
            session=session,
            campaign=found,
            period=period,
            slot=slot,
            merchant=offers.merchant_by_name(session=session, name=merchant),
            artwork=artwork.read_bytes(),
            artwork_name=artwork.name,
            offer_text=offer_text,
            valid_from=_day(valid_from, "--from"),
            valid_until=_day(valid_until, "--until"),
            fee_fen=fee_fen,
            replace=replace,
        )
        audit.record(
            session=session,
            actor=CLI_ACTOR,
            action="offer.booked",
            object_type="booking",
            object_id=booking.id,
            after=offers.state_of(booking),
        )
        console.print(
            _(
                "slot {slot} of {campaign} {period} booked for {merchant} (booking {id}); "
                "the period needs approving again",
                slot=safe(booking.slot),
                campaign=safe(found.name),
                period=booking.period,
                merchant=safe(merchant),
                id=booking.id,
            )
        )


@app.command("unbook", help=_("Removes a slot's booking of a period (the union's own artwork prints there)."))
def unbook(
    campaign: str = typer.Argument(..., help=_("Campaign name or id.")),
    period: str = typer.Argument(..., help=_("Quarter, e.g. 2027-Q1.")),
    slot: str = typer.Argument(..., help=_("The slot's name.")),
) -> None:
    """Removes a booking."""
    with db.session_scope(db.ensure_schema()) as session:
        found = campaigns.get_by_ref(session=session, ref=campaign)
        booking = offers.unbook(session=session, campaign=found, period=period, slot=slot)
        audit.record(
            session=session,
            actor=CLI_ACTOR,
            action="offer.unbooked",
            object_type="booking",
            object_id=booking.id,
            before=offers.state_of(booking),
        )
        console.print(_("booking {id} removed", id=booking.id))


@app.command(
    "report", help=_("Redemptions of a campaign period per offer, township, unit kind and age band.")
)
def report(
    campaign: str = typer.Argument(..., help=_("Campaign name or id.")),
    period: str = typer.Argument(..., help=_("Quarter, e.g. 2027-Q1.")),
    csv_path: Path | None = typer.Option(None, "--csv", help=_("Also write the report as CSV to this file.")),
) -> None:
    """Shows the planners' redemption report."""
    with db.session_scope(db.ensure_schema()) as session:
        found = campaigns.get_by_ref(session=session, ref=campaign)
        result = reports.planner_report(session=session, campaign=found, period=period)
    console.print(
        _(
            "{count} redemptions of {mailed} pieces mailed.",
            count=result.redemptions,
            mailed=result.mailed,
        )
    )
    table = Table()
    for header in (
        _("dimension"),
        _("value"),
        *result.weeks,
        _("redemptions"),
        _("pieces mailed"),
        _("share"),
    ):
        table.add_column(safe(header))
    for row in result.rows:
        table.add_row(
            translate(reports.DIMENSIONS[row.dimension]),
            safe(row.value),
            *(str(row.by_week.get(w, 0)) for w in result.weeks),
            str(row.redemptions),
            str(row.mailed),
            f"{row.share:.2%}" if row.share is not None else "—",
        )
    console.print(table)
    if csv_path is not None:
        csv_path.write_text("\ufeff" + reports.planner_csv(result), encoding="utf-8")
        console.print(_("written to {path}", path=safe(str(csv_path))))
