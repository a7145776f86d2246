"""`outreach printshop`: print shops — add, list, assign to a campaign, their batches, download, webhooks."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from outreach import db
from outreach.accounts import audit, webhooks
from outreach.accounts import service as accounts
from outreach.campaigns import service as campaigns
from outreach.cli.output import console, safe
from outreach.cli.paths import output_folder
from outreach.errors import InputError
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


CLI_ACTOR = audit.Actor(username="cli", address="cli")


@app.command(
    help=_("Sets (or with --off turns off) a print shop's webhook; a new signing secret is shown once.")
)
def webhook(
    shop: str = typer.Argument(..., help=_("The print shop.")),
    url: str | None = typer.Argument(None, help=_("Where its events are POSTed (http:// or https://).")),
    rotate: bool = typer.Option(
        False, "--rotate", help=_("Generate a new signing secret (the old one stops).")
    ),
    off: bool = typer.Option(False, "--off", help=_("Turn the webhook off.")),
) -> None:
    """Sets (or with --off turns off) a print shop's webhook; a new signing secret is shown once."""
    with db.session_scope(db.ensure_schema()) as session:
        if off:
            endpoint = webhooks.disable(session=session, print_shop=shop)
            action, secret = "webhook.disable", None
        else:
            if url is None:
                raise InputError(_("name the webhook's URL, or give --off to turn it off"))
            endpoint, secret = webhooks.configure(session=session, print_shop=shop, url=url, rotate=rotate)
            action = "webhook.set"
        audit.record(
            session=session,
            actor=CLI_ACTOR,
            action=action,
            object_type="organisation",
            object_id=endpoint.organisation_id,
            after={"url": endpoint.url, "active": endpoint.active},
            detail="new secret" if secret else None,
        )
    if off:
        console.print(_("print shop {shop}: webhook turned off", shop=safe(shop)))
        return
    console.print(_("print shop {shop}: events go to {url}", shop=safe(shop), url=safe(endpoint.url)))
    if secret:
        # On a line of its own, never wrapped: it is copied into the shop's receiver.
        console.print(_("signing secret (shown only this once): {secret}", secret=secret), soft_wrap=True)


@app.command("webhook-log", help=_("Lists webhook delivery attempts, newest first."))
def webhook_log(
    shop: str | None = typer.Option(None, "--shop", help=_("Only this print shop's.")),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help=_("How many attempts to list.")),
    as_json: bool = typer.Option(False, "--json", help=_("Print the attempts as JSON.")),
) -> None:
    """Lists webhook delivery attempts, newest first."""
    with db.session_scope(db.ensure_schema()) as session:
        rows = webhooks.deliveries(session=session, print_shop=shop, limit=limit)
    if as_json:
        items = [
            {
                "id": r.delivery.id,
                "at": r.delivery.at.isoformat(),
                "shop": r.print_shop,
                "event_id": r.event.id,
                "event": r.event.event,
                "event_state": r.event.state,
                "attempt": r.delivery.attempt,
                "status_code": r.delivery.status_code,
                "error": r.delivery.error,
                "duration_ms": r.delivery.duration_ms,
            }
            for r in rows
        ]
        print(json.dumps(items, ensure_ascii=False))
        return
    if not rows:
        console.print(_("no webhook deliveries yet"))
        return
    table = Table(
        _("attempted at"),
        _("print shop"),
        _("webhook event"),
        _("attempt no."),
        _("HTTP status"),
        _("error"),
        _("duration (ms)"),
    )
    for r in rows:
        d = r.delivery
        table.add_row(
            d.at.strftime("%Y-%m-%d %H:%M:%S"),
            safe(r.print_shop),
            safe(f"{r.event.event} #{r.event.id} ({r.event.state})"),
            str(d.attempt),
            "-" if d.status_code is None else str(d.status_code),
            safe(d.error or "-"),
            str(d.duration_ms),
        )
    console.print(table)
