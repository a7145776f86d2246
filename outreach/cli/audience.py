"""`outreach audience`: count, preview and save audiences; the suppression list.

Only arguments and answers live here: the rules (what a channel reaches, which channel a suppression blocks by
default, values that match no one) are the audience and suppression services'. Every data value printed goes
through `safe`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import typer
from rich.table import Table

from audiences import query, service, suppression
from audiences.fields import chinese_names
from audiences.schemas import BreakdownRow, SuppressionIn, UnmatchedValue
from outreach import db
from outreach.cli.output import console, err_console, safe
from outreach.i18n import _, current_language, translate
from outreach.periods import local_time_text

app = typer.Typer(
    help=_("Audiences: who a campaign reaches, and who must not be contacted."), no_args_is_help=True
)


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


EXPR_HELP = _(
    "An audience expression, e.g. \"性别 = '女' and 单位类型 in ('企业', '学校')\" "
    "(`outreach audience fields` lists the fields)."
)
CHANNEL_HELP = _(
    "Only recipients reachable on this channel: letter (an address, no refusal) or sms "
    "(a consented mobile); never the suppressed."
)


def _channel(option: ChannelOption | None) -> service.Channel | None:
    return None if option is None else ("sms" if option is ChannelOption.sms else "letter")


def _field_title(name: str) -> str:
    """A field as a heading: its Chinese name when messages are Chinese (单位.乡镇 reads as 乡镇)."""
    names = chinese_names(name)
    return names[0] if names and current_language() != "en" else name


def _value_text(value: str | int | bool | None) -> str:
    if value is None:
        return _("(none)")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


def _breakdown_table(by: str, rows: tuple[BreakdownRow, ...], total: int) -> Table:
    table = Table()
    table.add_column(safe(_field_title(by)), overflow="fold")
    table.add_column(_("number of workers"), justify="right", no_wrap=True)
    table.add_column("%", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(safe(_value_text(row.value)), f"{row.count:,}", f"{row.percent(total):.1f}%")
    return table


def _rows_json(rows: tuple[BreakdownRow, ...], total: int) -> list[dict[str, Any]]:
    return [{"value": r.value, "count": r.count, "percent": round(r.percent(total), 2)} for r in rows]


def _warnings_json(warnings: tuple[UnmatchedValue, ...]) -> list[dict[str, Any]]:
    return [
        {"field": w.field, "value": w.value, "suggestions": list(w.suggestions), "message": w.message}
        for w in warnings
    ]


def _print_total(total: int, channel: str | None) -> None:
    shown = f"{total:,}"
    if channel is None:
        console.print(_("[bold]{total}[/] workers", total=shown))
    else:
        name = translate(suppression.CHANNEL_NAMES.get(channel, channel))
        console.print(_("[bold]{total}[/] workers reachable by {channel}", total=shown, channel=safe(name)))


def _print_warnings(warnings: tuple[UnmatchedValue, ...]) -> None:
    # On stderr, so that a piped table or JSON stays clean; the planner still sees it.
    label = safe(_("warning"))
    for warning in warnings:
        err_console.print(f"[yellow]{label}:[/] {safe(warning.message)}", soft_wrap=True)


@app.command(help=_("How many workers an expression selects, with a breakdown."))
def count(
    expression: str = typer.Argument(..., help=EXPR_HELP),
    by: str = typer.Option(
        "unit.township", "--by", help=_("Break down by this field (any audience field, e.g. 单位类型).")
    ),
    channel: ChannelOption | None = typer.Option(None, "--channel", help=CHANNEL_HELP),
    as_json: bool = typer.Option(False, "--json", help=_("Print JSON instead of a table.")),
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
            "warnings": _warnings_json(result.warnings),
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    _print_warnings(result.warnings)
    _print_total(result.total, result.channel)
    console.print(_breakdown_table(result.by or "", result.rows, result.total))


@app.command(
    help=_("Breakdowns by township, unit kind and category, and a sample of recipients (mobiles masked).")
)
def preview(
    expression: str = typer.Argument(..., help=EXPR_HELP),
    channel: ChannelOption | None = typer.Option(None, "--channel", help=CHANNEL_HELP),
    sample: int = typer.Option(
        10, "--sample", min=0, max=service.MAX_SAMPLE, help=_("How many recipients to show.")
    ),
) -> None:
    """Breakdowns by township, unit kind and category, and a sample of recipients (mobiles masked)."""
    query.validate(expression)
    with db.session_scope(db.ensure_schema()) as session:
        result = service.preview(
            session=session, expression=expression, channel=_channel(channel), sample=sample
        )
    _print_warnings(result.warnings)
    _print_total(result.total, result.channel)
    for by, rows in result.breakdowns.items():
        console.print(_breakdown_table(by, rows, result.total))
    table = Table(title=_("sample recipients"), title_justify="left")
    for column in (
        _("id"),
        _("name"),
        _("work unit"),
        _field_title("unit.township"),
        _("address"),
        _("postcode"),
        _("mobile"),
    ):
        table.add_column(safe(column), overflow="fold")  # wrapped at 80 columns, never cut off
    for r in result.sample:
        table.add_row(
            str(r.worker_id),
            safe(r.name),
            safe(r.unit_name),
            safe(r.township or ""),
            safe(r.address or ""),
            safe(r.postcode or ""),
            safe(r.mobile),
        )
    console.print(table)


@app.command(help=_("Saves (or replaces) a named audience that campaigns refer to."))
def save(
    name: str = typer.Argument(..., help=_("The audience's name, e.g. 俏佳人-女职工.")),
    expression: str = typer.Argument(..., help=EXPR_HELP),
) -> None:
    """Saves (or replaces) a named audience that campaigns refer to."""
    query.validate(expression)
    with db.session_scope(db.ensure_schema()) as session:
        audience = service.save(session=session, name=name, expression=expression)
        warnings = service.unmatched_values(session=session, expression=expression)
    _print_warnings(warnings)
    console.print(
        _(
            "saved audience {name}: {expression}",
            name=safe(audience.name),
            expression=safe(audience.expression),
        )
    )


@app.command("list", help=_("Lists the saved audiences."))
def list_() -> None:
    """Lists the saved audiences."""
    with db.session_scope(db.ensure_schema()) as session:
        audiences = service.list_audiences(session=session)
    table = Table()
    for column in (_("audience"), _("expression"), _("last changed")):
        table.add_column(column, overflow="fold")
    for audience in audiences:
        table.add_row(
            safe(audience.name), safe(audience.expression), safe(local_time_text(audience.updated_at))
        )
    console.print(table)


@app.command(help=_("Shows a saved audience and how many it selects now."))
def show(
    name: str = typer.Argument(..., help=_("A saved audience's name.")),
    channel: ChannelOption | None = typer.Option(None, "--channel", help=CHANNEL_HELP),
) -> None:
    """Shows a saved audience and how many it selects now."""
    with db.session_scope(db.ensure_schema()) as session:
        audience = service.get_by_name(session=session, name=name)
        result = service.count(session=session, expression=audience.expression, channel=_channel(channel))
    _print_warnings(result.warnings)
    console.print(f"[bold]{safe(audience.name)}[/]")
    console.print(_("  expression: {expression}", expression=safe(audience.expression)))
    total = f"{result.total:,}"
    console.print(_("  workers now: {total}", total=total))


@app.command(help=_("Lists the fields an expression can use, by English and by Chinese name."))
def fields() -> None:
    """Lists the fields an expression can use."""
    table = Table()
    for column in (_("field"), _("Chinese name"), _("type"), _("meaning")):
        table.add_column(column, overflow="fold")
    for field in service.field_catalogue():
        table.add_row(
            safe(field.name), safe("、".join(field.chinese_names)), safe(field.type), safe(field.description)
        )
    console.print(table)


def _suppress_channel(option: SuppressChannelOption) -> suppression.SuppressionChannel:
    if option is SuppressChannelOption.sms:
        return "sms"
    return "all" if option is SuppressChannelOption.all else "letter"


def _who(worker_id: int | None, mobile: str) -> str:
    if worker_id is None:
        return mobile
    worker = _("worker {id}", id=worker_id)
    return _("{worker} and {mobile}", worker=worker, mobile=mobile) if mobile else worker


@app.command(help=_("Adds someone to the suppression list (adding the same twice changes nothing)."))
def suppress(
    mobile: str | None = typer.Option(
        None, "--mobile", help=_("Suppress this number (all workers with it).")
    ),
    worker_id: int | None = typer.Option(None, "--worker-id", help=_("Suppress this worker.")),
    reason: ReasonOption = typer.Option(
        ReasonOption.opt_out,
        "--reason",
        help=_("Why: opt_out (asked not to be contacted), returned_mail (letter came back), sms_reply."),
    ),
    channel: SuppressChannelOption | None = typer.Option(
        None,
        "--channel",
        help=_("Default: letter for returned mail, all for the others (opt-outs hold across channels)."),
    ),
    note: str | None = typer.Option(None, "--note", help=_("A note kept with the entry.")),
) -> None:
    """Adds someone to the suppression list (idempotent)."""
    request = SuppressionIn(
        reason=reason.value,  # type: ignore[arg-type]
        channel=None if channel is None else _suppress_channel(channel),
        worker_id=worker_id,
        mobile=mobile,
        note=note,
    )
    with db.session_scope(db.ensure_schema()) as session:
        entry = suppression.add(session=session, request=request)
    console.print(
        _(
            "suppressed {who} on {channel} ({reason}), entry {id}",
            who=safe(_who(entry.worker_id, entry.mobile)),
            channel=safe(translate(suppression.CHANNEL_NAMES[entry.channel])),
            reason=safe(translate(suppression.REASON_NAMES[entry.reason])),
            id=entry.id,
        )
    )


@app.command(
    help=_("Records an SMS reply; a stop reply (R, T, TD, 退订, 拒收) suppresses the number everywhere.")
)
def reply(
    mobile: str = typer.Argument(..., help=_("The number the reply came from.")),
    text: str = typer.Argument(..., help=_("The reply's text.")),
) -> None:
    """Records an SMS reply; an opt-out reply suppresses the number on every channel."""
    with db.session_scope(db.ensure_schema()) as session:
        row = suppression.record_sms_reply(session=session, mobile=mobile, text=text)
        masked = None if row is None else suppression.list_suppressions(session=session, entry_id=row.id)[0]
    if masked is None:
        console.print(_("not an opt-out reply; nothing recorded"))
    else:
        console.print(_("suppressed {mobile} on every channel", mobile=safe(masked.mobile)))


@app.command(help=_("Lists the most recent suppressions (mobiles masked)."))
def suppressions(
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help=_("How many entries to show.")),
) -> None:
    """Lists the most recent suppressions (mobiles masked)."""
    with db.session_scope(db.ensure_schema()) as session:
        entries = suppression.list_suppressions(session=session, limit=limit)
    table = Table()
    for column in (_("entry"), _("channel"), _("reason"), _("worker"), _("mobile"), _("note"), _("added")):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            str(entry.id),
            safe(translate(suppression.CHANNEL_NAMES.get(entry.channel, entry.channel))),
            safe(translate(suppression.REASON_NAMES.get(entry.reason, entry.reason))),
            "" if entry.worker_id is None else str(entry.worker_id),
            safe(entry.mobile),
            safe(entry.note or ""),
            safe(local_time_text(entry.created_at)),
        )
    console.print(table)
