"""`outreach sms`: the replies recipients sent that a person should read (stop replies act by themselves)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from audiences.privacy import mask_mobile
from outreach import db
from outreach.cli.output import console, safe
from outreach.i18n import _
from outreach.periods import local_time_text
from outreach.runs import sms

app = typer.Typer(help=_("Live SMS: replies from recipients."), no_args_is_help=True)


@app.command(help=_("Lists the SMS replies for a person to read, newest first (stop replies with --all)."))
def replies(
    include_stops: bool = typer.Option(
        False, "--all", help=_("Also list the stop replies (R, T, 退订...).")
    ),
    limit: int = typer.Option(100, min=1, max=10_000, help=_("At most this many replies.")),
    as_json: bool = typer.Option(False, "--json", help=_("Print JSON.")),
) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        rows = [
            {
                "id": r.id,
                "received_at": local_time_text(r.sent_at or r.received_at),
                "gateway": r.gateway,
                "mobile": mask_mobile(r.mobile),
                "text": r.text,
                "stop": r.stop,
            }
            for r in sms.replies(session=session, include_stops=include_stops, limit=limit)
        ]
    if as_json:
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        console.print(_("no SMS replies to read"))
        return
    table = Table(_("reply id"), _("received at"), _("gateway"), _("mobile"), _("reply text"), _("stops"))
    for row in rows:
        table.add_row(
            str(row["id"]),
            safe(str(row["received_at"])),
            safe(str(row["gateway"])),
            safe(str(row["mobile"])),
            safe(str(row["text"])),
            _("yes") if row["stop"] else "",
        )
    console.print(table)
