"""`outreach campaign`: create, estimate, approve, change, show and list campaigns."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences import service as audiences
from audiences.models import Audience
from outreach import db
from outreach.campaigns import service
from outreach.campaigns.models import Campaign
from outreach.ledger import service as ledger
from outreach.money import format_fen
from outreach.periods import local_date, quarter_of
from outreach.runs import service as runs
from outreach.runs.models import Run

app = typer.Typer(
    help="Campaigns: audience + kit + channel + rate card + budget + schedule.", no_args_is_help=True
)
console = Console()


@app.command()
def create(
    name: str = typer.Argument(..., help="A name for the campaign, e.g. 俏佳人."),
    audience: str = typer.Option(..., help="A saved audience (outreach audience save)."),
    kit: str = typer.Option(..., help="A kit in templates/ (qiaojiaren, notice, ...) or a kit folder."),
    channel: str = typer.Option("letter", help="letter or sms."),
    rate_card: str = typer.Option(..., help="The rate card code (outreach ledger rates)."),
    schedule: str = typer.Option("manual", help="quarterly (run by the schedule) or manual."),
    print_shop: str | None = typer.Option(None, help="The print shop the batches go to."),
    batch_size: int = typer.Option(service.DEFAULT_BATCH_SIZE, help="Pieces per print batch."),
) -> None:
    """Creates a draft campaign."""
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
        console.print(
            f"campaign [bold]{campaign.name}[/] created (draft); approve it with "
            f"`outreach campaign approve {campaign.name} --period {quarter_of(local_date()).next()}`"
        )


def _estimate_table(session: Session, campaign: Campaign, period: str) -> Table:
    audience = session.get(Audience, campaign.audience_id)
    assert audience is not None
    reach = audiences.count(
        session=session, expression=audience.expression, channel=runs.reach_channel(campaign)
    ).total
    est = ledger.estimate(
        session=session, campaign_id=campaign.id, period=period, pieces=reach, channel=campaign.channel
    )
    table = Table(title=f"{campaign.name} {period}: cost estimate", show_header=False)
    table.add_row("reachable pieces", f"{reach:,}")
    table.add_row(
        f"rate card {est.rate_card_code} v{est.rate_card_version}",
        f"{format_fen(est.unit_price_fen)} a {'piece' if campaign.channel == 'letter' else 'SMS part'}",
    )
    table.add_row("postage and printing", format_fen(est.base_fen))
    for fee in est.fees:
        table.add_row(fee.name, f"{format_fen(fee.list_fen)}" + (" [green](waived)[/]" if fee.waived else ""))
    table.add_row("list price", format_fen(est.list_fen))
    table.add_row("waived", f"−{format_fen(est.waived_fen)}")
    table.add_row("[bold]total[/]", f"[bold]{format_fen(est.total_fen)}[/]")
    if est.budget_fen is None:
        table.add_row("budget", "[red]none set[/] (outreach ledger budget set)")
    else:
        table.add_row(f"budget {est.budget_period}", format_fen(est.budget_fen))
        table.add_row("left after this run", format_fen(est.remaining_after_fen or 0))
    if est.over_by_fen:
        table.add_row("[red]over budget by[/]", f"[red]{format_fen(est.over_by_fen)}[/]")
    return table


@app.command()
def estimate(name: str, period: str = typer.Option(..., help="e.g. 2027-Q1")) -> None:
    """Shows pieces reachable, list price, waived fees, total and the budget left afterwards."""
    with db.session_scope(db.ensure_schema()) as session:
        campaign = service.get_by_name(session=session, name=name)
        console.print(_estimate_table(session, campaign, period))


@app.command()
def approve(
    name: str, period: str = typer.Option(..., help="The period this content is for, e.g. 2027-Q1.")
) -> None:
    """Approves the campaign's current kit and audience for one period (shows the estimate first)."""
    with db.session_scope(db.ensure_schema()) as session:
        campaign = service.get_by_name(session=session, name=name)
        console.print(_estimate_table(session, campaign, period))
        service.approve(session=session, campaign=campaign, period=period)
        console.print(f"campaign [bold]{campaign.name}[/] approved for {campaign.approved_period}")


@app.command()
def change(
    name: str,
    kit: str | None = typer.Option(None, help="A new kit."),
    audience: str | None = typer.Option(None, help="A new saved audience."),
) -> None:
    """Changes the kit or audience; the campaign then needs a new approval."""
    with db.session_scope(db.ensure_schema()) as session:
        campaign = service.get_by_name(session=session, name=name)
        service.change(session=session, campaign=campaign, kit=kit, audience=audience)
        console.print(f"campaign [bold]{name}[/] changed; it needs a new approval before its next run")


@app.command()
def cancel(name: str) -> None:
    """Cancels the campaign: the schedule no longer runs it."""
    with db.session_scope(db.ensure_schema()) as session:
        service.cancel(session=session, campaign=service.get_by_name(session=session, name=name))
        console.print(f"campaign [bold]{name}[/] cancelled")


@app.command()
def show(name: str, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Shows a campaign, its approval and its runs (with why a run waits)."""
    with db.session_scope(db.ensure_schema()) as session:
        campaign = service.get_by_name(session=session, name=name)
        audience = session.get(Audience, campaign.audience_id)
        assert audience is not None
        run_rows = session.scalars(
            select(Run).where(Run.campaign_id == campaign.id).order_by(Run.period)
        ).all()
        info = {
            "name": campaign.name,
            "state": campaign.state,
            "channel": campaign.channel,
            "kit": campaign.kit,
            "audience": audience.name,
            "expression": audience.expression,
            "rate_card": campaign.rate_card_code,
            "schedule": campaign.schedule,
            "print_shop": campaign.print_shop,
            "approved_period": campaign.approved_period,
            "runs": [
                {"id": r.id, "period": r.period, "state": r.state, "pieces": r.piece_count, "note": r.note}
                for r in run_rows
            ],
        }
        if as_json:
            console.print_json(json.dumps(info, ensure_ascii=False))
            return
        table = Table(show_header=False, title=f"campaign {campaign.name}")
        for key, value in info.items():
            if key != "runs":
                table.add_row(key, "" if value is None else str(value))
        console.print(table)
        runs_table = Table("run", "period", "state", "pieces", "note", title="runs")
        for r in run_rows:
            runs_table.add_row(str(r.id), r.period, r.state, f"{r.piece_count:,}", r.note or "")
        console.print(runs_table)


@app.command("list")
def list_campaigns() -> None:
    """Lists campaigns, with any run that waits for an approval or a budget."""
    with db.session_scope(db.ensure_schema()) as session:
        table = Table("campaign", "channel", "state", "schedule", "approved for", "waiting")
        for c in service.list_all(session=session):
            waiting = session.scalars(
                select(Run).where(Run.campaign_id == c.id, Run.state == "waiting")
            ).all()
            note = "; ".join(f"{r.period}: {r.note}" for r in waiting)
            table.add_row(c.name, c.channel, c.state, c.schedule, c.approved_period or "-", note)
        console.print(table)
