"""A small registry, an audience, a rate card, a budget and an approved campaign, for run tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audiences import service as audiences
from outreach.accounts import service as accounts
from outreach.campaigns import service as campaigns
from outreach.ledger import service as ledger
from outreach.ledger.schemas import FeeLine
from tests.audiences.factories import make_unit, make_worker

TOWNSHIPS = ("城关镇", "西城镇", "梅仙镇")
SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = ("秀英", "桂英", "丽华", "美玲", "晓燕", "春梅", "海燕", "玉兰")
PRINT_SHOP = "尤溪县邮政商函印制中心"


@dataclass
class World:
    campaign: str
    campaign_id: int
    women: int


def build_world(
    session: Session,
    *,
    name: str = "俏佳人",
    women: int = 40,
    kit: str = "qiaojiaren",
    channel: str = "letter",
    batch_size: int = 10,
    budget_fen: int = 1_000_000,
    schedule: str = "manual",
    period: str | None = "2027-Q1",
    extra_names: tuple[str, ...] = (),
    print_shop: str | None = PRINT_SHOP,
    approve_anyway: bool = False,
) -> World:
    """Women (and as many men) in units of three townships; one campaign of the women, approved for period."""
    units = [
        make_unit(
            session,
            name=f"尤溪县{t}第{i}纺织有限公司",
            township=t,
            postcode=f"36510{k}",
            address=f"{t}人民路{i}号",
        )
        for k, t in enumerate(TOWNSHIPS)
        for i in range(1, 3)
    ]
    names = [f"{SURNAMES[i % 10]}{GIVEN[(i // 10) % 8]}" for i in range(women)]
    names[: len(extra_names)] = extra_names
    for i, person in enumerate(names):
        make_worker(
            session,
            units[i % len(units)],
            name=person,
            gender="F",
            birth_year=1970 + i % 30,
            mobile=f"139{i:08d}",
            consent_sms=True,
        )
        make_worker(
            session,
            units[i % len(units)],
            name=f"男职工{i}",
            gender="M",
            birth_year=1980,
            mobile=f"137{i:08d}",
            consent_sms=True,
        )
    audience = f"{name}-women"
    audiences.save(session=session, name=audience, expression="gender = 'F'")
    code = f"rc-{abs(hash(name)) % 10_000}"
    ledger.set_rate_card(
        session=session,
        code=code,
        effective_from=date(2020, 1, 1),
        letter_fen=100,
        sms_part_fen=5,
        fees=[
            FeeLine("名址使用费", per_piece_fen=10, waived=True),
            FeeLine("折叠封装费", per_piece_fen=5, waived=True),
        ],
    )
    if print_shop is not None and not accounts.list_organisations(session=session, kind="printshop"):
        accounts.add_organisation(session=session, kind="printshop", name=print_shop)
    campaign = campaigns.create(
        session=session,
        print_shop=print_shop,
        name=name,
        audience=audience,
        kit=kit,
        channel=channel,
        rate_card_code=code,
        schedule=schedule,
        batch_size=batch_size,
    )
    ledger.set_budget(session=session, campaign_id=campaign.id, period="2027", amount_fen=budget_fen)
    if period:
        campaigns.approve(session=session, campaign=campaign, period=period, force=approve_anyway)
    session.flush()
    return World(campaign=name, campaign_id=campaign.id, women=women)


def committed_world(engine: Engine, **kwargs: object) -> World:
    """build_world in its own committed transaction."""
    with Session(engine) as session, session.begin():
        return build_world(session, **kwargs)  # type: ignore[arg-type]
