"""`outreach audience`: count, preview and save audiences; the suppression list."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from audiences import query, service, suppression
from audiences.fields import FIELDS
from audiences.privacy import mask_mobile
from audiences.service import BreakdownRow
from outreach import db

app = typer.Typer(
    help="Audiences: who a campaign reaches, and who must not be contacted.", no_args_is_help=True
)
console = Console()


class ChannelOption(StrEnum):
    """A channel to count reachable recipients on ('mail' is the old word for letter, still taken)."""

    letter = "letter"
    sms = "sms"
    mail = "mail"


class ReasonOption(StrEnum):
    """Why someone is suppressed."""

    opt_out = "opt_out"
    returned_mail = "returned_mail"
    sms_reply = "sms_reply"


class SuppressChannelOption(StrEnum):
    """The channel a suppression blocks ('mail' is the old word for letter, still taken)."""

    letter = "letter"
    sms = "sms"
    all = "all"
    mail = "mail"


EXPR_HELP = "An audience expression, e.g. \"gender = 'F' and unit.kind in ('企业', '学校')\"."
CHANNEL_HELP = "Only recipients reachable on this channel (address / consented mobile, not suppressed)."


def _channel(option: ChannelOption | None) -> service.Channel | None:
    return None if option is None else ("sms" if option is ChannelOption.sms else "letter")


def _breakdown_table(title: str, rows: tuple[BreakdownRow, ...], total: int) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title)
    table.add_column("count", justify="right")
    table.add_column("%", justify="right")
    for row in rows:
        label = "(none)" if row.value is None else str(row.value)
        table.add_row(escape(label), f"{row.count:,}", f"{row.percent(total):.1f}%")
    return table


def _rows_json(rows: tuple[BreakdownRow, ...], total: int) -> list[dict[str, Any]]:
    return [{"value": r.value, "count": r.count, "percent": round(r.percent(total), 2)} for r in rows]


@app.command()
def count(
    expression: str = typer.Argument(..., help=EXPR_HELP),
    by: str = typer.Option("unit.township", "--by", help="Break down by this field (any audience field)."),
    channel: ChannelOption | None = typer.Option(None, "--channel", help=CHANNEL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """How many workers an expression selects, with a breakdown."""
    query.validate(expression)  # a typing mistake is reported before the database is touched
    with db.session_scope(db.ensure_schema()) as session:
        result = service.count(session=session, expression=expression, channel=_channel(channel), by=by)
    if as_json:
        payload = {
            "expression": result.expression,
            "channel": result.channel,
            "by": result.by,
            "total": result.total,
            "breakdown": _rows_json(result.rows, result.total),
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    on = f" reachable by {result.channel}" if result.channel else ""
    console.print(f"[bold]{result.total:,}[/] workers{on}", highlight=False)
    console.print(_breakdown_table(result.by or "", result.rows, result.total))


@app.command()
def preview(
    expression: str = typer.Argument(..., help=EXPR_HELP),
    channel: ChannelOption | None = typer.Option(None, "--channel", help=CHANNEL_HELP),
    sample: int = typer.Option(
        10, "--sample", min=0, max=service.MAX_SAMPLE, help="How many recipients to show."
    ),
) -> None:
    """Breakdowns by township, unit kind and category, and a sample of recipients (mobiles masked)."""
    query.validate(expression)
    with db.session_scope(db.ensure_schema()) as session:
        result = service.preview(
            session=session, expression=expression, channel=_channel(channel), sample=sample
        )
    on = f" reachable by {result.channel}" if result.channel else ""
    console.print(f"[bold]{result.total:,}[/] workers{on}", highlight=False)
    for by, rows in result.breakdowns.items():
        console.print(_breakdown_table(by, rows, result.total))
    table = Table(title="sample", title_justify="left")
    for column in ("id", "name", "unit", "township", "address", "postcode", "mobile"):
        table.add_column(column)
    for r in result.sample:
        table.add_row(
            str(r.worker_id),
            r.name,
            r.unit_name,
            r.township or "",
            r.address or "",
            r.postcode or "",
            r.mobile,
        )
    console.print(table)


@app.command()
def save(
    name: str = typer.Argument(..., help="The audience's name, e.g. 俏佳人-女职工."),
    expression: str = typer.Argument(..., help=EXPR_HELP),
) -> None:
    """Saves (or replaces) a named audience that campaigns refer to."""
    query.validate(expression)
    with db.session_scope(db.ensure_schema()) as session:
        audience = service.save(session=session, name=name, expression=expression)
        console.print(
            f"saved audience {audience.name!r}: {audience.expression}", highlight=False, markup=False
        )


@app.command("list")
def list_() -> None:
    """Lists the saved audiences."""
    with db.session_scope(db.ensure_schema()) as session:
        table = Table()
        table.add_column("name")
        table.add_column("expression")
        table.add_column("updated")
        for audience in service.list_audiences(session=session):
            table.add_row(
                escape(audience.name), escape(audience.expression), f"{audience.updated_at:%Y-%m-%d %H:%M}"
            )
    console.print(table)


@app.command()
def show(
    name: str = typer.Argument(..., help="A saved audience's name."),
    channel: ChannelOption | None = typer.Option(None, "--channel", help=CHANNEL_HELP),
) -> None:
    """Shows a saved audience and how many it selects now."""
    with db.session_scope(db.ensure_schema()) as session:
        audience = service.get_by_name(session=session, name=name)
        result = service.count(session=session, expression=audience.expression, channel=_channel(channel))
        console.print(f"[bold]{escape(audience.name)}[/]", highlight=False)
        console.print(f"  expression: {audience.expression}", highlight=False, markup=False)
        console.print(f"  workers now: {result.total:,}", highlight=False)


@app.command()
def fields() -> None:
    """Lists the fields an expression can use."""
    table = Table()
    for column in ("field", "type", "meaning"):
        table.add_column(column)
    for field in FIELDS.values():
        table.add_row(field.name, str(field.type), field.description)
    console.print(table)


@app.command()
def suppress(
    mobile: str | None = typer.Option(None, "--mobile", help="Suppress this number (all workers with it)."),
    worker_id: int | None = typer.Option(None, "--worker-id", help="Suppress this worker."),
    reason: ReasonOption = typer.Option(ReasonOption.opt_out, "--reason"),
    channel: SuppressChannelOption | None = typer.Option(
        None,
        "--channel",
        help="Default: letter for returned mail, all for opt-outs (they hold across channels).",
    ),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Adds someone to the suppression list (idempotent)."""
    if channel is None:
        returned = reason is ReasonOption.returned_mail
        channel = SuppressChannelOption.letter if returned else SuppressChannelOption.all
    with db.session_scope(db.ensure_schema()) as session:
        row = suppression.suppress(
            session=session,
            reason=reason.value,
            channel=channel.value,
            worker_id=worker_id,
            mobile=mobile,
            note=note,
        )
        who = " and ".join(
            part
            for part in (
                f"worker {row.worker_id}" if row.worker_id is not None else "",
                mask_mobile(row.mobile) if row.mobile else "",
            )
            if part
        )
        console.print(f"suppressed {who} on {row.channel} ({row.reason}), entry {row.id}", highlight=False)


@app.command()
def reply(
    mobile: str = typer.Argument(..., help="The number the reply came from."),
    text: str = typer.Argument(..., help="The reply's text (R, T, TD, 退订, 拒收 suppress the number)."),
) -> None:
    """Records an SMS reply; an opt-out reply suppresses the number on every channel."""
    with db.session_scope(db.ensure_schema()) as session:
        row = suppression.record_sms_reply(session=session, mobile=mobile, text=text)
        if row is None:
            console.print("not an opt-out reply; nothing recorded", highlight=False)
        else:
            console.print(f"suppressed {mask_mobile(row.mobile)} on every channel", highlight=False)


@app.command()
def suppressions(limit: int = typer.Option(50, "--limit", min=1, max=10_000)) -> None:
    """Lists the most recent suppressions (mobiles masked)."""
    with db.session_scope(db.ensure_schema()) as session:
        table = Table()
        for column in ("id", "channel", "reason", "worker", "mobile", "note", "created"):
            table.add_column(column)
        for row in suppression.list_suppressions(session=session, limit=limit):
            table.add_row(
                str(row.id),
                row.channel,
                row.reason,
                "" if row.worker_id is None else str(row.worker_id),
                mask_mobile(row.mobile),
                escape(row.note or ""),
                f"{row.created_at:%Y-%m-%d %H:%M}",
            )
    console.print(table)
