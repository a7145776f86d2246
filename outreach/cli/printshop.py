"""`outreach printshop`: print shops — add, list, assign to a campaign, their batches, download."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from outreach import db
from outreach.accounts import service as accounts
from outreach.campaigns import service as campaigns
from outreach.cli.output import console, safe
from outreach.cli.paths import output_folder
from outreach.i18n import _
from outreach.runs import printshop
from outreach.storage import get_storage

app = typer.Typer(
    help=_("Print shops: the organisations that print and post the batches."), no_args_is_help=True
)


@app.command(help=_("Adds a print shop."))
def add(
    name: str = typer.Argument(..., help=_("The print shop's name, as campaigns will name it.")),
    address: str | None = typer.Option(None, "--address", help=_("Its postal address.")),
    contact: str | None = typer.Option(None, "--contact", help=_("The person to call.")),
    phone: str | None = typer.Option(None, "--phone", help=_("Its phone number.")),
    licence: str | None = typer.Option(
        None, "--licence", help=_("Its unified social credit code (18 characters).")
    ),
) -> None:
    """Adds a print shop."""
    with db.session_scope(db.ensure_schema()) as session:
        shop = accounts.add_organisation(
            session=session,
            kind="printshop",
            name=name,
            address=address,
            contact=contact,
            phone=phone,
            licence_no=licence,
        )
        console.print(_("print shop {name} added (id {id})", name=safe(shop.name), id=shop.id))


@app.command("list", help=_("Lists the print shops."))
def list_shops(
    as_json: bool = typer.Option(False, "--json", help=_("Print the print shops as JSON.")),
) -> None:
    """Lists the print shops."""
    with db.session_scope(db.ensure_schema()) as session:
        shops = accounts.list_organisations(session=session, kind="printshop")
        if as_json:
            rows = [
                {"id": s.id, "name": s.name, "contact": s.contact, "phone": s.phone, "active": s.active}
                for s in shops
            ]
            print(json.dumps(rows, ensure_ascii=False))
            return
        if not shops:
            console.print(_("no print shops yet; add one with `outreach printshop add NAME`"))
            return
        table = Table(
            _("print shop id"), _("print shop"), _("contact person"), _("phone number"), _("in use")
        )
        for s in shops:
            table.add_row(
                str(s.id),
                safe(s.name),
                safe(s.contact or "-"),
                safe(s.phone or "-"),
                "✓" if s.active else "-",
            )
        console.print(table)


@app.command(
    help=_("Names a campaign's print shop; tickets of batches not yet handed out are written again.")
)
def assign(
    campaign: str = typer.Argument(..., help=_("The campaign.")),
    shop: str = typer.Argument(..., help=_("The print shop its batches go to.")),
) -> None:
    """Names a campaign's print shop; tickets of batches not yet handed out are written again."""
    with db.session_scope(db.ensure_schema()) as session:
        found = campaigns.get_by_name(session=session, name=campaign)
        count = printshop.assign(session=session, storage=get_storage(), campaign=found, print_shop=shop)
        console.print(
            _(
                "campaign {campaign} now goes to print shop {shop}; {count} batch ticket(s) rewritten",
                campaign=safe(found.name),
                shop=safe(shop),
                count=count,
            )
        )


@app.command(help=_("Lists the batches assigned to a print shop."))
def batches(shop: str = typer.Argument(..., help=_("The print shop."))) -> None:
    """Lists the batches assigned to a print shop."""
    with db.session_scope(db.ensure_schema()) as session:
        rows = printshop.assigned_batches(session=session, print_shop=shop)
        table = Table(_("batch id"), _("campaign name"), _("run id"), _("pieces in batch"), _("batch state"))
        for row in rows:
            b = row.batch
            state = _("files deleted") if b.purged_at else b.state
            table.add_row(str(b.id), safe(row.campaign), str(b.run_id), f"{b.pieces:,}", safe(state))
        console.print(table)


@app.command(help=_("Copies a batch's files (checksums checked) and records it downloaded."))
def download(
    batch_id: int = typer.Argument(..., help=_("The batch.")),
    dest: Path = typer.Argument(..., callback=output_folder, help=_("The folder to copy its files into.")),
    shop: str | None = typer.Option(
        None, "--as", help=_("Download as this print shop (refused for another's batch).")
    ),
) -> None:
    """Copies a batch's files (checksums checked) and records it downloaded."""
    with db.session_scope(db.ensure_schema()) as session:
        files = printshop.download(
            session=session, storage=get_storage(), batch_id=batch_id, dest=dest, print_shop=shop
        )
    for path in files:
        console.print(safe(path))
    console.print(_("batch {id}: {count} file(s) downloaded", id=batch_id, count=len(files)))
