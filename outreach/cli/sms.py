"""`outreach sms`: the replies recipients sent that a person should read (stop replies act by themselves), and
when a campaign's messages may leave."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from audiences.privacy import mask_mobile
from outreach import db
from outreach.campaigns import service as campaigns
from outreach.channels.quiet_hours import KIND_NAMES
from outreach.cli.output import console, safe
from outreach.i18n import _
from outreach.periods import local_time_text
from outreach.runs import sms

app = typer.Typer(help=_("Live SMS: replies from recipients, sending hours."), no_args_is_help=True)


@app.command(help=_("Lists the SMS replies for a person to read, newest first (stop replies with --all)."))
def replies(
    include_stops: bool = typer.Option(False, "--all", help=_("Also list the stop replies (R, T, 退订...).")),
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


@app.command(
    help=_(
        "Shows or sets when a campaign's SMS may leave: its kind (marketing/推广 or notice/通知), its own "
        "hours (e.g. 09:00-18:00; '' for the kind's default) and messages per number per day."
    )
)
def hours(
    campaign: str = typer.Argument(..., help=_("campaign name")),
    kind: str | None = typer.Option(None, "--kind", help=_("marketing (推广) or notice (通知)")),
    window: str | None = typer.Option(None, "--hours", help=_("sending hours, e.g. 08:00-20:00")),
    cap: int | None = typer.Option(None, "--cap", help=_("messages per number per day (1-50)")),
) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        found = campaigns.get_by_name(session=session, name=campaign)
        if kind is None and window is None and cap is None:
            rules = sms.sending(session=session, campaign=found)
        else:
            rules = sms.set_sending(session=session, campaign=found, kind=kind, hours=window, daily_cap=cap)
    table = Table(show_header=False, title=_("SMS sending of {name}", name=safe(rules.campaign)))
    table.add_row(_("SMS kind"), safe(_(KIND_NAMES.get(rules.kind, rules.kind))))
    shown = rules.window if rules.own_hours else _("{window} (the kind's default)", window=rules.window)
    table.add_row(_("sending hours"), safe(shown))
    table.add_row(_("messages per number per day"), str(rules.daily_cap))
    console.print(table)
