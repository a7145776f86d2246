"""`outreach ledger`: budgets, rate cards, adjustments and statements for finance.

The commands parse arguments (yuan text, dates, fee specs through the ledger's own `parse_fee`) and format
answers; every rule is in outreach.ledger. A campaign is named by its name or its id (12 or #12).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import Engine

from outreach import db
from outreach.campaigns import service as campaigns
from outreach.cli.output import console, safe
from outreach.cli.paths import output_file
from outreach.errors import InputError
from outreach.i18n import N_, _
from outreach.ledger import service
from outreach.ledger.documents import rich_statement, write_statement_csv, write_statement_pdf
from outreach.ledger.schemas import RateCardOut
from outreach.money import MAX_PRICE_FEN, format_fen, parse_yuan
from outreach.periods import local_date, parse_period

app = typer.Typer(help=_("The cost ledger: budgets, rate cards, statements."), no_args_is_help=True)
budget_app = typer.Typer(help=_("Campaign budgets (per year or quarterly issue)."), no_args_is_help=True)
rates_app = typer.Typer(
    help=_("Rate cards: prices per letter piece and SMS part, itemised fees."), no_args_is_help=True
)
app.add_typer(budget_app, name="budget")
app.add_typer(rates_app, name="rates")

CAMPAIGN_REF = N_("The campaign's name or id (e.g. 俏佳人 or 12).")


def _engine() -> Engine:
    return db.ensure_schema(db.get_engine())


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InputError(
            _("{option} {value!r}: expected a date like 2027-01-01", option=option, value=text)
        ) from exc


@budget_app.command("set", help=_("Sets or raises a campaign's budget (a new version; history is kept)."))
def budget_set(
    campaign: str = typer.Argument(..., help=CAMPAIGN_REF),
    amount_yuan: str = typer.Argument(..., help=_("Budget in yuan, e.g. 6000 or 6000.00.")),
    period: str = typer.Option(None, "--period", help=_("2027 or 2027-Q1 (default: this year).")),
    reason: str = typer.Option(None, "--reason", help=_("Why (kept with the new version).")),
) -> None:
    fen = parse_yuan(amount_yuan, what=_("budget"))
    period = period or str(local_date().year)
    with db.session_scope(_engine()) as session:
        camp = campaigns.get_by_ref(session=session, ref=campaign)
        budget = service.set_budget(
            session=session, campaign_id=camp.id, period=period, amount_fen=fen, reason=reason
        )
        versions, name = len(budget.versions), camp.name
    console.print(
        _(
            "budget of {campaign} for {period}: {amount} (version {version})",
            campaign=safe(name),
            period=safe(period),
            amount=format_fen(fen),
            version=versions,
        )
    )


@budget_app.command(
    "show", help=_("Shows a campaign's budgets, what is committed against them and what is left.")
)
def budget_show(campaign: str = typer.Argument(..., help=CAMPAIGN_REF)) -> None:
    with db.session_scope(_engine()) as session:
        camp = campaigns.get_by_ref(session=session, ref=campaign)
        name = camp.name
        lines = service.budget_lines(session=session, campaign_id=camp.id)
    if not lines:
        console.print(
            _("{campaign} has no budget yet; set one with `outreach ledger budget set`", campaign=safe(name))
        )
        return
    table = Table(title=_("Budgets: {campaign}", campaign=safe(name)), title_justify="left")
    table.add_column(_("Period"), no_wrap=True)
    for head in (_("Budget"), _("Committed"), _("Left"), _("Versions")):
        table.add_column(head, justify="right", no_wrap=True)
    table.add_column(_("Last reason"), ratio=1, overflow="fold")
    for b in lines:
        table.add_row(
            b.period,
            format_fen(b.budget_fen),
            format_fen(b.committed_fen),
            format_fen(b.left_fen),
            str(b.versions),
            safe(b.last_reason or ""),
        )
    console.print(table)


@rates_app.command("set", help=_("Adds a new version of a rate card."))
def rates_set(
    code: str = typer.Argument(..., help=_("Rate card code, e.g. qiaojiaren.")),
    effective_from: str = typer.Option(..., "--from", help=_("First day in force, e.g. 2027-01-01.")),
    letter: str = typer.Option(..., "--letter", help=_("Price per letter piece in yuan, e.g. 1.00.")),
    sms_part: str = typer.Option("0", "--sms-part", help=_("Price per SMS part in yuan, e.g. 0.05.")),
    fee: list[str] = typer.Option(
        [], "--fee", help=_("NAME=YUAN[:fixed][:waived], e.g. 名址使用费=0.10:waived; repeat for each fee.")
    ),
    refund_undeliverable: bool = typer.Option(
        False, "--refund-undeliverable", help=_("The offer refunds pieces returned as undeliverable.")
    ),
    note: str = typer.Option(None, "--note", help=_("A note kept with the version.")),
) -> None:
    fees = [service.parse_fee(f) for f in fee]
    with db.session_scope(_engine()) as session:
        card = service.set_rate_card(
            session=session,
            code=code,
            effective_from=_parse_date(effective_from, "--from"),
            letter_fen=parse_yuan(letter, what="--letter", limit_fen=MAX_PRICE_FEN),
            sms_part_fen=parse_yuan(sms_part, what="--sms-part", limit_fen=MAX_PRICE_FEN),
            fees=fees,
            refund_undeliverable=refund_undeliverable,
            note=note,
        )
        out = service.rate_card_out(card)
    console.print(
        _(
            "rate card {code} version {version}, in force from {day}",
            code=safe(out.code),
            version=out.version,
            day=out.effective_from.isoformat(),
        )
    )


def _card_table(cards: list[RateCardOut], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(_("Code"), overflow="fold")
    table.add_column(_("Version"), justify="right", no_wrap=True)
    table.add_column(_("In force from"), no_wrap=True)
    table.add_column(_("Letter"), justify="right", no_wrap=True)
    table.add_column(_("SMS part"), justify="right", no_wrap=True)
    table.add_column(_("Fees"), ratio=1, overflow="fold")
    table.add_column(_("Refunds returns"))
    for c in cards:
        fees = "\n".join(
            safe(f.name)
            + " "
            + (
                _("{amount} a piece", amount=format_fen(f.per_piece_fen))
                if f.per_piece_fen is not None
                else _("{amount} fixed", amount=format_fen(f.fixed_fen or 0))
            )
            + (f" ({_('waived')})" if f.waived else "")
            for f in c.fees
        )
        table.add_row(
            safe(c.code),
            str(c.version),
            c.effective_from.isoformat(),
            format_fen(c.letter_fen),
            format_fen(c.sms_part_fen),
            fees or "—",
            _("yes") if c.refund_undeliverable else _("no"),
        )
    return table


@rates_app.command("show", help=_("Shows the rate card version in force on a date."))
def rates_show(
    code: str = typer.Argument(..., help=_("Rate card code.")),
    on: str = typer.Option(None, "--on", help=_("Date (default today).")),
) -> None:
    day = _parse_date(on, "--on") if on else local_date()
    with db.session_scope(_engine()) as session:
        card = service.rate_card_out(service.rate_card_in_force(session=session, code=code, on=day))
    console.print(_card_table([card], _("Rate card in force on {day}", day=day.isoformat())))


@rates_app.command("list", help=_("Lists every rate card version."))
def rates_list(code: str = typer.Argument(None, help=_("Only this code."))) -> None:
    with db.session_scope(_engine()) as session:
        cards = [service.rate_card_out(c) for c in service.rate_card_versions(session=session, code=code)]
    if not cards:
        console.print(_("no rate cards yet; add one with `outreach ledger rates set`"))
        return
    console.print(_card_table(cards, _("Rate cards")))


@app.command("adjust", help=_("Books a finance adjustment: a new ledger entry, never an edit of an old one."))
def adjust_cmd(
    campaign: str = typer.Argument(..., help=CAMPAIGN_REF),
    amount_yuan: str = typer.Option(
        ..., "--amount", help=_("Yuan: positive adds a cost, negative a credit.")
    ),
    reason: str = typer.Option(..., "--reason", help=_("Why (required; kept with the entry).")),
    period: str = typer.Option(None, "--period", help=_("2027-Q1 (default: this quarter).")),
) -> None:
    fen = parse_yuan(amount_yuan, allow_negative=True, what=_("adjustment"))
    with db.session_scope(_engine()) as session:
        camp = campaigns.get_by_ref(session=session, ref=campaign)
        entry = service.adjust(
            session=session, campaign_id=camp.id, amount_fen=fen, reason=reason, period=period
        )
        booked, name, stored_reason = entry.period, camp.name, entry.reason
    console.print(
        _(
            "adjustment of {amount} booked to {campaign} {period}: {reason}",
            amount=format_fen(fen),
            campaign=safe(name),
            period=booked,
            reason=safe(stored_reason),
        )
    )


@app.command("statement", help=_("Prints a campaign's statement; optionally writes CSV and PDF."))
def statement_cmd(
    campaign: str = typer.Argument(..., help=CAMPAIGN_REF),
    period: str = typer.Option(None, "--period", help=_("2027-Q1 or 2027 (default: everything).")),
    csv_out: Path = typer.Option(
        None, "--csv", help=_("Also write the statement as CSV here."), callback=output_file
    ),
    pdf_out: Path = typer.Option(
        None, "--pdf", help=_("Also write the statement as PDF here."), callback=output_file
    ),
) -> None:
    if period is not None:
        parse_period(period)
    with db.session_scope(_engine()) as session:
        camp = campaigns.get_by_ref(session=session, ref=campaign)
        st = service.statement(session=session, campaign_id=camp.id, period=period)
    console.print(rich_statement(st))
    if csv_out is not None:
        write_statement_csv(st, csv_out)
        console.print(_("CSV written to {path}", path=safe(csv_out)))
    if pdf_out is not None:
        write_statement_pdf(st, pdf_out)
        console.print(_("PDF written to {path}", path=safe(pdf_out)))
