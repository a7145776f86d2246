"""`outreach campaign`: create, estimate, approve, change, show and list campaigns.

The commands parse arguments and format answers; what an estimate holds and whether an approval goes through
is the campaign service's business. A campaign is named by its name or its id (12 or #12).
"""

from __future__ import annotations

import json

import typer
from pydantic import TypeAdapter
from rich.table import Table

from outreach import db
from outreach.campaigns import service
from outreach.campaigns.schemas import CampaignEstimate, CampaignOut
from outreach.cli.output import console, safe
from outreach.i18n import N_, _, translate
from outreach.money import format_fen
from outreach.periods import local_date, quarter_of
from outreach.runs.executor import state_label
from outreach.runs.models import DEFAULT_BATCH_SIZE

app = typer.Typer(
    help=_("Campaigns: audience + kit + channel + rate card + budget + schedule."), no_args_is_help=True
)

CAMPAIGN_REF = N_("The campaign's name or id (e.g. 俏佳人 or 12).")
# Words for stored values, in the catalogue (shown with `translate`).
WORDS = {
    "draft": N_("draft"),
    "approved": N_("approved (campaign)"),
    "active": N_("active (campaign)"),
    "finished": N_("finished"),
    "cancelled": N_("cancelled (campaign)"),
    "letter": N_("letter"),
    "sms": N_("SMS"),
    "quarterly": N_("quarterly"),
    "manual": N_("manual"),
}


def _word(value: str) -> str:
    return translate(WORDS[value]) if value in WORDS else safe(value)


@app.command(help=_("Creates a draft campaign."))
def create(
    name: str = typer.Argument(..., help=_("A name for the campaign, e.g. 俏佳人.")),
    audience: str = typer.Option(..., help=_("A saved audience (outreach audience save).")),
    kit: str = typer.Option(..., help=_("A kit in templates/ (qiaojiaren, notice, ...) or a kit folder.")),
    channel: str = typer.Option("letter", help=_("letter or sms.")),
    rate_card: str = typer.Option(..., help=_("The rate card code (outreach ledger rates).")),
    schedule: str = typer.Option("manual", help=_("quarterly (run by the schedule) or manual.")),
    print_shop: str | None = typer.Option(None, help=_("The print shop the batches go to.")),
    batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, help=_("Pieces per print batch.")),
) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        campaign = service.create(
            session=session,
            name=name,
            audience=audience,
            kit=kit,
            channel=channel,
            rate_card_code=rate_card,
            schedule=schedule,
            print_shop=print_shop,
            batch_size=batch_size,
        )
        bold = f"[bold]{safe(campaign.name)}[/]"
        console.print(
            _(
                "campaign {name} created (draft, id {id}); approve it with "
                "`outreach campaign approve {name} --period {period}`",
                name=bold,
                id=campaign.id,
                period=quarter_of(local_date()).next(),
            )
        )


def _estimate_table(est: CampaignEstimate, channel: str) -> Table:
    cost = est.cost
    table = Table(
        title=_("{name} {period}: cost estimate", name=safe(est.campaign_name), period=est.period),
        show_header=False,
        title_justify="left",
    )
    table.add_column(ratio=1)
    table.add_column(justify="right", no_wrap=True)
    table.add_row(_("reachable pieces"), f"{est.reach:,}")
    unit = _("a piece") if channel == "letter" else _("an SMS part")
    table.add_row(
        _(
            "rate card {code} v{version} (as in force on {day})",
            code=safe(cost.rate_card_code),
            version=cost.rate_card_version,
            day=cost.priced_on,
        ),
        f"{format_fen(cost.unit_price_fen)} {unit}",
    )
    table.add_row(_("postage and printing"), format_fen(cost.base_fen))
    for fee in cost.fees:
        waived = f" [green]({safe(_('waived'))})[/]" if fee.waived else ""
        table.add_row(safe(fee.name), format_fen(fee.list_fen) + waived)
    table.add_row(_("list price"), format_fen(cost.list_fen))
    table.add_row(_("waived"), format_fen(-cost.waived_fen))
    table.add_row(f"[bold]{safe(_('total'))}[/]", f"[bold]{format_fen(cost.total_fen)}[/]")
    if cost.budget_fen is None:
        table.add_row(_("budget"), f"[red]{safe(_('none set'))}[/] (outreach ledger budget set)")
    else:
        table.add_row(_("budget {period}", period=cost.budget_period), format_fen(cost.budget_fen))
        table.add_row(_("left after this run"), format_fen(cost.remaining_after_fen or 0))
    if cost.over_by_fen:
        table.add_row(f"[red]{safe(_('over budget by'))}[/]", f"[red]{format_fen(cost.over_by_fen)}[/]")
    return table


def _glyph_table(est: CampaignEstimate) -> Table:
    glyphs = est.glyphs
    table = Table()
    table.add_column(_("worker"), no_wrap=True)
    table.add_column(_("name"), overflow="fold")
    table.add_column(_("work unit"), overflow="fold")
    table.add_column(_("in"), overflow="fold")
    table.add_column(_("characters"), no_wrap=True)
    for p in glyphs.problems:
        worker = f"#{p.worker_id}" + (f" ({safe(p.worker_no)})" if p.worker_no else "")
        table.add_row(
            worker,
            safe(p.name),
            safe(p.unit_name),
            safe("、".join(p.fields)),
            safe(f"{p.characters} {p.codes}"),
        )
    return table


def _show_estimate(est: CampaignEstimate, channel: str) -> None:
    glyphs = est.glyphs
    if glyphs.total:
        # First, so the planner sees whom the run would fail before the money.
        title = _(
            "{count} recipients have characters no configured font can draw (their pieces would fail)",
            count=glyphs.total,
        )
        if glyphs.total > len(glyphs.problems):
            title += " " + _("(the first {n} shown)", n=len(glyphs.problems))
        console.print(f"[bold red]{safe(title)}[/]")
        console.print(_glyph_table(est))
        console.print(
            _("Fix these in the registry (outreach registry import) or add a font (OUTREACH_FONTS) first.")
        )
    console.print(_estimate_table(est, channel))


@app.command(
    help=_(
        "Shows pieces reachable, list price, waived fees, total, the budget left afterwards, and recipients"
        " no font can draw."
    )
)
def estimate(
    campaign: str = typer.Argument(..., help=CAMPAIGN_REF),
    period: str = typer.Option(..., help=_("e.g. 2027-Q1")),
) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        found = service.get_by_ref(session=session, ref=campaign)
        _show_estimate(service.estimate(session=session, campaign=found, period=period), found.channel)


@app.command(
    help=_(
        "Approves the campaign's current kit and audience for one period (shows the estimate first; refuses"
        " while some recipients' characters cannot be printed, unless --force)."
    )
)
def approve(
    campaign: str = typer.Argument(..., help=CAMPAIGN_REF),
    period: str = typer.Option(..., help=_("The period this content is for, e.g. 2027-Q1.")),
    force: bool = typer.Option(
        False, "--force", help=_("Approve although some recipients' pieces would fail for want of a glyph.")
    ),
) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        found = service.get_by_ref(session=session, ref=campaign)
        est = service.estimate(session=session, campaign=found, period=period)
        _show_estimate(est, found.channel)
        service.approve(session=session, campaign=found, period=period, force=force)
        bold = f"[bold]{safe(found.name)}[/]"
        console.print(
            _(
                "campaign {name} approved for {period}",
                name=bold,
                period=found.approved_period,
            )
        )


@app.command(help=_("Changes the kit or audience; the campaign then needs a new approval."))
def change(
    campaign: str = typer.Argument(..., help=CAMPAIGN_REF),
    kit: str | None = typer.Option(None, help=_("A new kit.")),
    audience: str | None = typer.Option(None, help=_("A new saved audience.")),
) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        found = service.get_by_ref(session=session, ref=campaign)
        service.change(session=session, campaign=found, kit=kit, audience=audience)
        bold = f"[bold]{safe(found.name)}[/]"
        console.print(_("campaign {name} changed; it needs a new approval before its next run", name=bold))


@app.command(help=_("Cancels the campaign: the schedule no longer runs it."))
def cancel(campaign: str = typer.Argument(..., help=CAMPAIGN_REF)) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        found = service.get_by_ref(session=session, ref=campaign)
        service.cancel(session=session, campaign=found)
        bold = f"[bold]{safe(found.name)}[/]"
        console.print(_("campaign {name} cancelled", name=bold))


def _detail_tables(info: CampaignOut) -> tuple[Table, Table]:
    table = Table(show_header=False, title=_("campaign {name}", name=safe(info.name)), title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    rows = [
        (_("id"), str(info.id)),
        (_("state"), _word(info.state)),
        (_("channel"), _word(info.channel)),
        (_("kit"), safe(info.kit)),
        (_("audience"), safe(info.audience)),
        (_("expression"), safe(info.expression)),
        (_("rate card"), safe(info.rate_card)),
        (_("schedule"), _word(info.schedule)),
        (_("print shop"), safe(info.print_shop) if info.print_shop else _("not assigned")),
        (_("approved for"), safe(info.approved_period or "-")),
    ]
    for key, value in rows:
        table.add_row(key, value)
    runs = Table(title=_("runs"), title_justify="left")
    runs.add_column(_("run"), no_wrap=True)
    runs.add_column(_("period"), no_wrap=True)
    runs.add_column(_("state"), no_wrap=True)
    runs.add_column(_("pieces"), justify="right", no_wrap=True)
    runs.add_column(_("note"), overflow="fold")
    for r in info.runs:
        runs.add_row(str(r.id), r.period, safe(state_label(r.state)), f"{r.pieces:,}", safe(r.note or ""))
    return table, runs


@app.command(help=_("Shows a campaign, its approval and its runs (with why a run waits)."))
def show(
    campaign: str = typer.Argument(..., help=CAMPAIGN_REF),
    as_json: bool = typer.Option(False, "--json", help=_("Print JSON.")),
) -> None:
    with db.session_scope(db.ensure_schema()) as session:
        info = service.detail(session=session, campaign=service.get_by_ref(session=session, ref=campaign))
    if as_json:
        data = TypeAdapter(CampaignOut).dump_python(info, mode="json")
        # Plain print: JSON is data for programs, never Rich markup.
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for table in _detail_tables(info):
        console.print(table)


@app.command("list", help=_("Lists campaigns, with any run that waits for an approval or a budget."))
def list_campaigns() -> None:
    with db.session_scope(db.ensure_schema()) as session:
        rows = service.summaries(session=session)
    if not rows:
        console.print(_("no campaigns yet; create one with `outreach campaign create`"))
        return
    table = Table(title=_("campaigns"), title_justify="left")
    table.add_column(_("id"), justify="right", no_wrap=True)
    for head in (_("campaign"), _("channel"), _("state"), _("schedule"), _("approved for")):
        table.add_column(head)
    table.add_column(_("waiting"), ratio=1, overflow="fold")
    for c in rows:
        note = "; ".join(f"{r.period}: {r.note or ''}" for r in c.waiting)
        table.add_row(
            str(c.id),
            safe(c.name),
            _word(c.channel),
            _word(c.state),
            _word(c.schedule),
            safe(c.approved_period or "-"),
            safe(note),
        )
    console.print(table)
