"""`outreach ledger`: budgets, rate cards and statements for finance."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from outreach import db
from outreach.errors import InputError
from outreach.ledger import service
from outreach.ledger.models import RateCard
from outreach.ledger.schemas import FeeLine
from outreach.ledger.statement import rich_statement, write_statement_csv, write_statement_pdf
from outreach.money import format_fen, parse_yuan
from outreach.periods import local_date, parse_period, year_periods

app = typer.Typer(help="The cost ledger: budgets, rate cards, statements.", no_args_is_help=True)
budget_app = typer.Typer(help="Campaign budgets (per year or quarterly issue).", no_args_is_help=True)
rates_app = typer.Typer(
    help="Rate cards: prices per letter piece and SMS part, itemised fees.", no_args_is_help=True
)
app.add_typer(budget_app, name="budget")
app.add_typer(rates_app, name="rates")
console = Console()


def _engine() -> Engine:
    return db.ensure_schema(db.get_engine())


def parse_fee(text: str) -> FeeLine:
    """Parses --fee 'NAME=YUAN[:fixed][:waived]' (per piece unless ':fixed')."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise InputError(f"--fee {text!r}: expected NAME=YUAN[:fixed][:waived], e.g. 名址使用费=0.10:waived")
    amount, *flags = rest.split(":")
    unknown = [f for f in flags if f.strip() not in ("fixed", "waived", "per-piece")]
    if unknown:
        raise InputError(f"--fee {text!r}: unknown flag {unknown[0]!r} (use :fixed and/or :waived)")
    fen = parse_yuan(amount, what=f"--fee {name.strip()}")
    fixed = "fixed" in [f.strip() for f in flags]
    waived = "waived" in [f.strip() for f in flags]
    return FeeLine(
        name.strip(), per_piece_fen=None if fixed else fen, fixed_fen=fen if fixed else None, waived=waived
    )


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r}: expected a date like 2027-01-01") from exc


@budget_app.command("set")
def budget_set(
    campaign: str = typer.Argument(..., help="Campaign name."),
    amount_yuan: str = typer.Argument(..., help="Budget in yuan, e.g. 6000 or 6000.00."),
    period: str = typer.Option(None, "--period", help="2027 or 2027-Q1 (default: this year)."),
    reason: str = typer.Option(None, "--reason", help="Why (kept with the new version)."),
) -> None:
    """Sets or raises a campaign's budget (a new version; history is kept)."""
    fen = parse_yuan(amount_yuan, what="budget")
    period = period or str(local_date().year)
    with db.session_scope(_engine()) as session:
        camp = service.campaign_by_name(session=session, name=campaign)
        budget = service.set_budget(
            session=session, campaign_id=camp.id, period=period, amount_fen=fen, reason=reason
        )
        versions = len(budget.versions)
    console.print(f"budget of {camp.name} for {period}: {format_fen(fen)} (version {versions})")


@budget_app.command("show")
def budget_show(campaign: str = typer.Argument(..., help="Campaign name.")) -> None:
    """Shows a campaign's budgets, what is committed against them and what is left."""
    with db.session_scope(_engine()) as session:
        camp = service.campaign_by_name(session=session, name=campaign)
        table = Table(title=f"预算 Budgets: {camp.name}", title_justify="left")
        for head in (
            "期间 Period",
            "预算 Budget",
            "已占用 Committed",
            "剩余 Left",
            "版本 Versions",
            "原因 Last reason",
        ):
            table.add_column(
                head, justify="right" if head[:2] in ("预算", "已占", "剩余", "版本") else "left"
            )
        rows = service.budgets(session=session, campaign_id=camp.id)
        for b in rows:
            year, quarter = parse_period(b.period)
            scope = [b.period] if quarter else year_periods(year)
            used = service.committed(session=session, campaign_id=camp.id, periods=scope)
            amount = b.amount_fen or 0
            table.add_row(
                b.period,
                format_fen(amount),
                format_fen(used),
                format_fen(amount - used),
                str(len(b.versions)),
                b.versions[-1].reason or "",
            )
    if not rows:
        console.print(f"{camp.name} has no budget yet; set one with `outreach ledger budget set`")
        return
    console.print(table)


@rates_app.command("set")
def rates_set(
    code: str = typer.Argument(..., help="Rate card code, e.g. qiaojiaren."),
    effective_from: str = typer.Option(..., "--from", help="First day in force, e.g. 2027-01-01."),
    letter: str = typer.Option(..., "--letter", help="Price per letter piece in yuan, e.g. 1.00."),
    sms_part: str = typer.Option("0", "--sms-part", help="Price per SMS part in yuan, e.g. 0.05."),
    fee: list[str] = typer.Option([], "--fee", help="NAME=YUAN[:fixed][:waived]; repeat for each fee."),
    refund_undeliverable: bool = typer.Option(
        False, "--refund-undeliverable", help="The offer refunds pieces returned as undeliverable."
    ),
    note: str = typer.Option(None, "--note"),
) -> None:
    """Adds a new version of a rate card."""
    fees = [parse_fee(f) for f in fee]
    with db.session_scope(_engine()) as session:
        card = service.set_rate_card(
            session=session,
            code=code,
            effective_from=_parse_date(effective_from, "--from"),
            letter_fen=parse_yuan(letter, what="--letter"),
            sms_part_fen=parse_yuan(sms_part, what="--sms-part"),
            fees=fees,
            refund_undeliverable=refund_undeliverable,
            note=note,
        )
        console.print(f"rate card {card.code} version {card.version}, in force from {card.effective_from}")


def _card_table(cards: list[RateCard], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for head in (
        "代码 Code",
        "版本 Version",
        "起 From",
        "信函/件 Letter",
        "短信/条 SMS part",
        "费用 Fees",
        "退件退款 Refund",
    ):
        table.add_column(head)
    for c in cards:
        fees = "\n".join(
            f"{f.name} {format_fen(f.per_piece_fen if f.per_piece_fen is not None else f.fixed_fen or 0)}"
            f"{'/件' if f.per_piece_fen is not None else ' 固定 fixed'}{' (减免 waived)' if f.waived else ''}"
            for f in c.fees
        )
        table.add_row(
            c.code,
            str(c.version),
            c.effective_from.isoformat(),
            format_fen(c.letter_fen),
            format_fen(c.sms_part_fen),
            fees or "—",
            "是 yes" if c.refund_undeliverable else "否 no",
        )
    return table


@rates_app.command("show")
def rates_show(
    code: str = typer.Argument(..., help="Rate card code."),
    on: str = typer.Option(None, "--on", help="Date (default today)."),
) -> None:
    """Shows the rate card version in force on a date."""
    day = _parse_date(on, "--on") if on else local_date()
    with db.session_scope(_engine()) as session:
        card = service.rate_card_in_force(session=session, code=code, on=day)
        console.print(_card_table([card], f"费率 Rate card in force on {day}"))


@rates_app.command("list")
def rates_list(code: str = typer.Argument(None, help="Only this code.")) -> None:
    """Lists every rate card version."""
    with db.session_scope(_engine()) as session:
        cards = service.rate_card_versions(session=session, code=code)
        if not cards:
            console.print("no rate cards yet; add one with `outreach ledger rates set`")
            return
        console.print(_card_table(cards, "费率 Rate cards"))


@app.command("adjust")
def adjust_cmd(
    campaign: str = typer.Argument(..., help="Campaign name."),
    amount_yuan: str = typer.Option(..., "--amount", help="Yuan: positive adds a cost, negative a credit."),
    reason: str = typer.Option(..., "--reason", help="Why (required; kept with the entry)."),
    period: str = typer.Option(None, "--period", help="2027-Q1 (default: this quarter)."),
) -> None:
    """Books a finance adjustment: a new ledger entry, never an edit of an old one."""
    fen = parse_yuan(amount_yuan, allow_negative=True, what="adjustment")
    with db.session_scope(_engine()) as session:
        camp = service.campaign_by_name(session=session, name=campaign)
        entry = service.adjust(
            session=session, campaign_id=camp.id, amount_fen=fen, reason=reason, period=period
        )
        booked = entry.period
    console.print(f"adjustment of {format_fen(fen)} booked to {camp.name} {booked}: {reason}")


@app.command("statement")
def statement_cmd(
    campaign: str = typer.Argument(..., help="Campaign name."),
    period: str = typer.Option(None, "--period", help="2027-Q1 or 2027 (default: everything)."),
    csv_out: Path = typer.Option(None, "--csv", help="Also write the statement as CSV here."),
    pdf_out: Path = typer.Option(None, "--pdf", help="Also write the statement as PDF here."),
) -> None:
    """Prints a campaign's statement; optionally writes CSV and PDF."""
    if period is not None:
        parse_period(period)
    with db.session_scope(_engine()) as session:
        camp = service.campaign_by_name(session=session, name=campaign)
        st = service.statement(session=session, campaign_id=camp.id, period=period)
    console.print(rich_statement(st))
    if csv_out is not None:
        write_statement_csv(st, csv_out)
        console.print(f"CSV written to {csv_out}")
    if pdf_out is not None:
        write_statement_pdf(st, pdf_out)
        console.print(f"PDF written to {pdf_out}")
