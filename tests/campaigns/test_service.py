"""The campaign service: look-ups by id or name, name rules, the approval estimate and the glyph check."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.errors import Conflict, GlyphError, InputError, NotFound
from outreach.ledger import service as ledger
from outreach.render import KitOptions, load_kit
from outreach.settings import get_settings
from tests.ledger.conftest import freeze_today
from tests.runs.world import build_world


def absent_character() -> str:
    """A rare name character (CJK extensions B-G) that no font configured here can draw."""
    kit = load_kit("qiaojiaren", KitOptions.from_settings(get_settings()))
    for ch in "𪚥𠔻𰻞𱁬𫚭𬌗𠀋𡃁":
        if all(chain.font_for(ch) is None for chain in kit.fonts.values()):
            return ch
    raise AssertionError("every candidate rare character is covered here; pick another")


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Campaign)) or 0


def test_a_campaign_is_found_by_name_or_id(session: Session) -> None:
    world = build_world(session, women=3, period=None)
    for ref in ("俏佳人", " 俏佳人 ", str(world.campaign_id), f"#{world.campaign_id}", world.campaign_id):
        assert campaigns.get_by_ref(session=session, ref=ref).id == world.campaign_id
    with pytest.raises(NotFound, match=re.escape("没有活动 '俏佳'（现有活动：俏佳人）")):
        campaigns.get_by_ref(session=session, ref="俏佳")
    with pytest.raises(NotFound, match="没有编号为 999999 的活动"):
        campaigns.get(session=session, campaign_id=999_999)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("名" * 101, "长 101 个字符；最多允许 100 个"),
        ("   ", "为空"),
        ("12", "纯数字的名称会被当作活动编号"),
        ("#12", "纯数字的名称会被当作活动编号"),
        ("俏佳人\n2027", "U+000A"),
        ("俏佳人\u200e", "U+200E"),
    ],
)
def test_bad_names_are_refused_before_the_database_sees_them(
    session: Session, name: str, message: str
) -> None:
    """On PostgreSQL a 101-character name used to fail inside the INSERT with a traceback."""
    build_world(session, women=2, period=None)
    before = _count(session)
    with pytest.raises(InputError, match=re.escape(message)):
        campaigns.create(
            session=session,
            name=name,
            audience="俏佳人-women",
            kit="qiaojiaren",
            channel="letter",
            rate_card_code="x",
        )
    assert _count(session) == before


def test_a_name_of_100_characters_is_kept_whole_and_unique(session: Session) -> None:
    build_world(session, women=2, period=None)
    name = "俏" * 100
    made = campaigns.create(
        session=session,
        name=f" {name} ",
        audience="俏佳人-women",
        kit="qiaojiaren",
        channel="letter",
        rate_card_code="x",
    )
    assert made.name == name
    with pytest.raises(Conflict, match="已存在"):
        campaigns.create(
            session=session,
            name=name,
            audience="俏佳人-women",
            kit="qiaojiaren",
            channel="letter",
            rate_card_code="x",
        )


def test_the_estimate_prices_next_year_with_next_years_card(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README walkthrough on 2026-11-30: the card starts 2027-01-01; estimate and approve 2027-Q1."""
    freeze_today(monkeypatch, date(2026, 11, 30))
    build_world(session, women=12, period=None)
    ledger.set_rate_card(
        session=session, code="qjr", effective_from=date(2027, 1, 1), letter_fen=100, sms_part_fen=5
    )
    campaign = campaigns.create(
        session=session,
        name="俏佳人2027",
        audience="俏佳人-women",
        kit="qiaojiaren",
        channel="letter",
        rate_card_code="qjr",
    )
    ledger.set_budget(session=session, campaign_id=campaign.id, period="2027", amount_fen=100_000)
    est = campaigns.estimate(session=session, campaign=campaign, period="2027-Q1")
    assert (est.reach, est.cost.priced_on, est.cost.total_fen, est.glyphs.total) == (
        12,
        "2027-01-01",
        1200,
        0,
    )
    assert est.cost.remaining_after_fen == 100_000 - 1200
    campaigns.approve(session=session, campaign=campaign, period="2027-Q1")
    assert campaign.approved_period == "2027-Q1"
    freeze_today(monkeypatch, date(2027, 5, 1))
    assert (
        campaigns.estimate(session=session, campaign=campaign, period="2027-Q3").cost.priced_on
        == "2027-07-01"
    )


def test_recipients_no_font_can_draw_are_listed_and_block_approval(session: Session) -> None:
    rare = absent_character()
    world = build_world(session, women=6, period=None, extra_names=(f"王{rare}英",))
    campaign = campaigns.get_by_ref(session=session, ref=world.campaign)
    est = campaigns.estimate(session=session, campaign=campaign, period="2027-Q1")
    assert est.glyphs.total == 1
    [problem] = est.glyphs.problems
    assert (problem.name, problem.characters, problem.fields) == (f"王{rare}英", rare, ("姓名",))
    assert problem.codes == f"U+{ord(rare):04X}"
    with pytest.raises(GlyphError, match=f"有 1 位收件人.*王{rare}英.*--force"):
        campaigns.approve(session=session, campaign=campaign, period="2027-Q1")
    assert campaign.approved_period is None and campaign.state == "draft"
    campaigns.approve(session=session, campaign=campaign, period="2027-Q1", force=True)
    assert campaign.approved_period == "2027-Q1"


def test_listings_come_from_the_service(session: Session) -> None:
    world = build_world(session, women=3)
    campaign = campaigns.get_by_ref(session=session, ref=world.campaign)
    detail = campaigns.detail(session=session, campaign=campaign)
    assert (detail.name, detail.audience, detail.approved_period, detail.runs) == (
        "俏佳人",
        "俏佳人-women",
        "2027-Q1",
        (),
    )
    assert detail.print_shop == "尤溪县邮政商函印制中心"
    [summary] = [s for s in campaigns.summaries(session=session) if s.id == campaign.id]
    assert (summary.state, summary.waiting) == ("approved", ())


def test_the_boundary_schemas_make_an_openapi_schema(session: Session) -> None:
    """What the web API will publish comes from the same classes the CLI uses, computed amounts included."""
    from pydantic import TypeAdapter

    from outreach.campaigns.schemas import CampaignEstimate, CampaignOut, CampaignSummary
    from outreach.ledger.schemas import BudgetLine, RateCardOut, Statement

    for cls in (CampaignEstimate, CampaignOut, CampaignSummary, Statement, BudgetLine, RateCardOut):
        schema = TypeAdapter(cls).json_schema(mode="serialization")
        assert schema["type"] == "object" and schema["properties"], cls
    statement = TypeAdapter(Statement).json_schema(mode="serialization")
    assert {"closing_fen", "available_fen", "returned_pieces"} <= set(statement["properties"])
    rare = absent_character()
    world = build_world(session, women=2, period=None, extra_names=(f"王{rare}",))
    est = campaigns.estimate(
        session=session,
        campaign=campaigns.get(session=session, campaign_id=world.campaign_id),
        period="2027-Q1",
    )
    data = TypeAdapter(CampaignEstimate).dump_python(est, mode="json")
    assert data["cost"]["fits"] is True and data["glyphs"]["problems"][0]["codes"] == f"U+{ord(rare):04X}"
