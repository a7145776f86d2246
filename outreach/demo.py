"""The demo: the engine's main job end to end on a generated county registry.

Generate ~12,000 workers (about 6,000 women), import them, save the audience of women workers, create and
approve the 俏佳人 campaign with its budget and the 1-yuan rate card with waived fees, run 2027-Q1, write the
print batches and the ledger statement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audiences import service as audiences
from audiences.importer import ImportSummary, import_registry
from audiences.sample import write_sample
from outreach import db
from outreach.accounts import service as accounts
from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.errors import NotFound
from outreach.i18n import _
from outreach.ledger import service as ledger
from outreach.ledger.models import RateCard
from outreach.ledger.schemas import FeeLine, Statement
from outreach.ledger.statement import write_statement_csv, write_statement_pdf
from outreach.runs import service as runs
from outreach.storage import get_storage

CAMPAIGN = "俏佳人"
AUDIENCE = "女职工"
EXPRESSION = "性别 = '女'"
RATE_CARD = "qiaojiaren"
PERIOD = "2027-Q1"
BUDGET_YEAR = "2027"
BUDGET_FEN = 30_000_00  # 30,000 yuan: four quarterly letters of about 6,000 pieces at 1 yuan
PRINT_SHOP = "三明市邮政商函印制中心"
# The 俏佳人 offer: 1 yuan a piece with postage and printing; the registry, printing of addresses, folding and
# packing, and the design are waived (shown at list price on the statement, so it says what the offer saved).
FEES = (
    FeeLine("名址使用费", per_piece_fen=10, waived=True),
    FeeLine("名址打印费", per_piece_fen=5, waived=True),
    FeeLine("折叠封装费", per_piece_fen=10, waived=True),
    FeeLine("设计费", fixed_fen=800_00, waived=True),
)


@dataclass
class DemoResult:
    """What the demo made."""

    run: int
    pieces: int
    failed: int
    registry: Path
    imported: ImportSummary
    batches: list[dict[str, str]] = field(default_factory=list)
    statement: Statement | None = None
    statement_csv: Path | None = None
    statement_pdf: Path | None = None

    def as_json(self) -> dict[str, Any]:
        """The summary `outreach demo --json` prints."""
        st = self.statement
        assert st is not None
        return {
            "run": self.run,
            "pieces": self.pieces,
            "failed": self.failed,
            "batches": self.batches,
            "registry": {"file": str(self.registry), **self.imported.to_dict()},
            "ledger": {
                "budget_fen": st.opening_fen,
                "charged_fen": st.net_fen,
                "list_fen": st.list_fen,
                "waived_fen": st.waived_fen,
                "remaining_fen": st.closing_fen,
                "statement_csv": str(self.statement_csv),
                "statement_pdf": str(self.statement_pdf),
            },
        }


Step = Callable[[str], None]


def _setup_campaign(session: Session) -> Campaign:
    """The audience, rate card, campaign, budget and approval; reused when they exist already."""
    audiences.save(session=session, name=AUDIENCE, expression=EXPRESSION)
    if session.scalar(select(RateCard.id).where(RateCard.code == RATE_CARD)) is None:
        ledger.set_rate_card(
            session=session,
            code=RATE_CARD,
            effective_from=date(2026, 1, 1),
            letter_fen=100,
            sms_part_fen=5,
            fees=FEES,
            refund_undeliverable=True,
            note="俏佳人商函：每件1元（含邮资、印制），名址与折叠封装、设计费减免",
        )
    try:
        campaign = campaigns.get_by_name(session=session, name=CAMPAIGN)
    except NotFound:
        try:
            accounts.print_shop(session=session, name=PRINT_SHOP)
        except NotFound:
            accounts.add_organisation(session=session, kind="printshop", name=PRINT_SHOP)
        campaign = campaigns.create(
            session=session,
            name=CAMPAIGN,
            audience=AUDIENCE,
            kit="qiaojiaren",
            channel="letter",
            rate_card_code=RATE_CARD,
            schedule="quarterly",
            print_shop=PRINT_SHOP,
        )
        ledger.set_budget(
            session=session,
            campaign_id=campaign.id,
            period=BUDGET_YEAR,
            amount_fen=BUDGET_FEN,
            reason="2027年度俏佳人女职工关爱活动预算",
        )
    if campaign.approved_period != PERIOD:
        campaigns.approve(session=session, campaign=campaign, period=PERIOD)
    return campaign


def run_demo(
    *,
    out: Path,
    size: int = 12_000,
    seed: int = 2027,
    processes: int = 1,
    step: Step | None = None,
    execute: Callable[[int], object] | None = None,
) -> DemoResult:
    """Runs the whole job; `execute(run_id)` does the rendering (in-process by default)."""
    say = step or (lambda _msg: None)
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    engine = db.ensure_schema()
    registry = out / "registry.csv"
    rejects = out / "rejects.csv"
    say(_("generating a county registry of {size} workers: {path}", size=f"{size:,}", path=registry))
    write_sample(registry, workers=size, seed=seed, malformed=max(3, size // 2000))
    say(_("importing it (rows it refuses go to {path})", path=rejects))
    with db.session_scope(engine) as session:
        summary = import_registry(session=session, path=registry, rejects=rejects)
    with db.session_scope(engine) as session:
        campaign = _setup_campaign(session)
        say(
            _(
                "campaign {campaign}: audience {audience} ({expression}), approved for {period}; "
                "starting the run",
                campaign=CAMPAIGN,
                audience=AUDIENCE,
                expression=EXPRESSION,
                period=PERIOD,
            )
        )
        run = runs.start(session=session, campaign=campaign, period=PERIOD)
        run_id, campaign_id = run.id, campaign.id
    if execute is None:
        from outreach.runs import executor

        executor.execute(run_id, processes=processes, wait=True)
    else:
        execute(run_id)
    storage = get_storage()
    with db.session_scope(engine) as session:
        st = runs.status(session=session, run_id=run_id)
        result = DemoResult(
            run=run_id, pieces=st.rendered, failed=st.failed, registry=registry, imported=summary
        )
        for batch in runs.batches(session=session, run_id=run_id):
            result.batches.append(
                {
                    role: storage.locate(str(batch.files[name]["key"]))
                    for role, name in (
                        ("envelopes", "envelopes.pdf"),
                        ("letters", "letters.pdf"),
                        ("manifest", "manifest.csv"),
                        ("ticket", "ticket.json"),
                    )
                }
            )
        statement = ledger.statement(session=session, campaign_id=campaign_id, period=PERIOD)
    result.statement = statement
    result.statement_csv = out / f"statement-{PERIOD}.csv"
    result.statement_pdf = out / f"statement-{PERIOD}.pdf"
    write_statement_csv(statement, result.statement_csv)
    write_statement_pdf(statement, result.statement_pdf)
    return result
