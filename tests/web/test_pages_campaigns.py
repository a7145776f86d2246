"""活动 pages through the web service: the list, the wizard, a period's text and artwork (checked by the kit's
preflight, the reason next to the slot), the proof, the estimate with waived fees, submitting; the roles."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences.models import Unit
from outreach.accounts.auth_models import AuditEntry
from outreach.campaigns import content
from outreach.campaigns import service as campaigns
from outreach.campaigns.content_models import ArtworkVersion, ContentChange, PeriodContent
from outreach.ledger import service as ledger
from outreach.offers import service as offers
from outreach.offers.models import AdBooking
from tests.runs.world import committed_world
from tests.web.conftest import People, csrf_of, login

PERIOD = "2027-Q1"
# Slot "front" of the 俏佳人 kit: 52 × 16 mm, so 614 × 189 pixels at 300 dpi.
FRONT_PX = (614, 189)
LONG_NAME = "欧阳慕容雪儿"
LONG_ADDRESS = "福建省三明市尤溪县经济开发区西城工业园创业大道一百八十八号恒丰科技产业园三期七栋"


def jpeg(size: tuple[int, int] = FRONT_PX, *, mode: str = "CMYK", dpi: int = 300) -> bytes:
    """A flat JPEG (CMYK at 300 dpi unless told otherwise)."""
    colour: tuple[int, ...] = (0, 180, 60, 0) if mode == "CMYK" else (200, 30, 60)
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="JPEG", dpi=(dpi, dpi), quality=85)
    return buffer.getvalue()


@dataclass
class Scene:
    campaign_id: int
    merchant: str


def make_scene(engine: Engine, people: People, *, name: str = "俏佳人") -> Scene:
    """A draft letter campaign of 8 women (one with a long name, one with a long address) and a merchant."""
    world = committed_world(
        engine, name=name, women=8, period=None, print_shop=people.shop.name, extra_names=(LONG_NAME,)
    )
    with Session(engine) as session, session.begin():
        merchant = offers.add_merchant(
            session=session, name="尤溪美丽美容院", licence_no="91350426MA2XXXXX0M"
        )
        merchant_name = merchant.name
        unit = session.scalars(select(Unit).order_by(Unit.id.desc())).first()
        assert unit is not None
        unit.address = LONG_ADDRESS
    return Scene(world.campaign_id, merchant_name)


@pytest.fixture
def scene(committed_engine: Engine, people: People) -> Scene:
    return make_scene(committed_engine, people)


def page_of(client: TestClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response.text


def post(client: TestClient, url: str, data: dict[str, str], **kwargs: Any) -> Any:
    token = csrf_of(client.get("/campaigns").text)
    return client.post(url, data={**data, "csrf_token": token}, follow_redirects=False, **kwargs)


def test_the_list_shows_campaigns_to_union_roles_and_offers_creating_to_planners(
    client: TestClient, people: People, scene: Scene
) -> None:
    login(client, "planner")
    html = page_of(client, "/campaigns")
    assert "俏佳人" in html and 'href="/campaigns/new"' in html and "草稿" in html
    client.cookies.clear()
    login(client, "finance")
    html = page_of(client, "/campaigns")
    assert "俏佳人" in html and 'href="/campaigns/new"' not in html
    assert client.get("/campaigns/new").status_code == 403


def test_a_print_shop_is_refused_the_campaign_pages(client: TestClient, people: People, scene: Scene) -> None:
    login(client, "shop")
    for url in (
        "/campaigns",
        f"/campaigns/{scene.campaign_id}",
        f"/campaigns/{scene.campaign_id}/periods/{PERIOD}",
    ):
        assert client.get(url).status_code == 403, url


def test_the_wizard_creates_a_campaign_step_by_step_without_javascript(
    client: TestClient, people: People, scene: Scene, committed_engine: Engine
) -> None:
    login(client, "planner")
    html = page_of(client, "/campaigns/new")
    assert 'aria-current="step"' in html and "俏佳人-women" in html
    with Session(committed_engine) as session:
        code = sorted({c.code for c in ledger.rate_card_versions(session=session)})[0]
    fields = {"name": "金秋助学", "audience": "俏佳人-women", "channel": "letter"}
    # A name in use is refused on its own step, with the reason.
    refused = post(client, "/campaigns/new", {**fields, "name": "俏佳人", "step": "1"})
    assert refused.status_code == 422 and "已存在" in refused.text
    step2 = post(client, "/campaigns/new", {**fields, "step": "1"})
    assert step2.status_code == 200 and 'name="kit"' in step2.text
    assert 'type="hidden" name="name" value="金秋助学"' in step2.text
    fields |= {"kit": "qiaojiaren", "rate_card": code, "print_shop": people.shop.name}
    step3 = post(client, "/campaigns/new", {**fields, "step": "2"})
    assert step3.status_code == 200 and 'name="budget"' in step3.text
    bad_budget = post(client, "/campaigns/new", {**fields, "budget": "六千", "step": "3"})
    assert bad_budget.status_code == 422 and "六千" in bad_budget.text
    fields |= {"budget": "6,000.00", "budget_period": "2027", "schedule": "quarterly"}
    step4 = post(client, "/campaigns/new", {**fields, "step": "3"})
    assert "6,000.00" in step4.text and "创建活动" in step4.text
    back = post(client, "/campaigns/new", {**fields, "step": "4", "go": "back"})
    assert 'name="budget"' in back.text
    created = post(client, "/campaigns/new", {**fields, "step": "4"})
    assert created.status_code == 303
    with Session(committed_engine) as session:
        campaign = campaigns.get_by_name(session=session, name="金秋助学")
        assert (campaign.kit, campaign.schedule, campaign.state) == ("qiaojiaren", "quarterly", "draft")
        assert campaign.print_shop is not None and campaign.print_shop.name == people.shop.name
        lines = ledger.budget_lines(session=session, campaign_id=campaign.id)
        assert [(b.period, b.budget_fen) for b in lines] == [("2027", 600_000)]
    assert "金秋助学" in page_of(client, created.headers["location"])


def test_the_period_page_shows_text_blocks_slots_the_estimate_with_waived_fees_and_the_glyph_check(
    client: TestClient, people: People, scene: Scene
) -> None:
    login(client, "planner")
    html = page_of(client, f"/campaigns/{scene.campaign_id}/periods/2027年第一季度")
    assert 'name="block:letter_body.j2"' in html and 'name="block:tips.j2"' in html
    for slot in ("front", "back-left", "back-right", "insert-1", "insert-4"):
        assert f'id="slot-{slot}"' in html
    assert "名址使用费" in html and "减免" in html and "−¥1.20" in html  # the waived fees of the rate card
    assert ">8<" in html  # eight women reached
    assert "每位收件人的姓名和地址都能用套件的字体印出" in html


def test_saving_the_text_records_who_changed_it_and_voids_the_approval(
    client: TestClient, people: People, scene: Scene, committed_engine: Engine
) -> None:
    login(client, "planner")
    url = f"/campaigns/{scene.campaign_id}/periods/{PERIOD}"
    html = page_of(client, url)
    body = re.search(r'name="block:letter_body.j2"[^>]*>([^<]*)</textarea>', html)
    assert body is not None
    new_text = body.group(1).replace("&#34;", '"').replace("&amp;", "&") + "\n\n祝您新春快乐！"
    saved = post(client, f"{url}/text", {"block:letter_body.j2": new_text})
    assert saved.status_code == 303, saved.text
    with Session(committed_engine) as session:
        row = session.scalars(select(PeriodContent)).one()
        assert row.blocks["letter_body.j2"].endswith("祝您新春快乐！") and row.changed_by == "planner"
        change = session.scalars(select(ContentChange)).one()
        assert (change.what, change.username) == ("text:letter_body.j2", "planner")
        campaign = campaigns.get(session=session, campaign_id=scene.campaign_id)
        before = campaigns.content_hash(session=session, campaign=campaign, period=PERIOD)
        kit = content.content_kit(session=session, campaign=campaign, period=PERIOD)
        assert any(
            el.template is not None
            and "新春快乐" in el.template.render(name="x", unit_name="u", season="春", hotline="1")
            for el in kit.pages[0]
            if el.template_file == "letter_body.j2"
        )
    assert "正文 letter_body.j2" in page_of(client, url)
    # A template error names the block and the line; nothing is stored.
    broken = post(client, f"{url}/text", {"block:letter_body.j2": "第一行\n{{ name "})
    assert broken.status_code == 422
    assert "letter_body.j2 第 2 行" in broken.text
    # Text that overflows its box is refused with the kit's preflight reason.
    long = post(client, f"{url}/text", {"block:tips.j2": "很长的提示。" * 400})
    assert long.status_code == 422
    assert "文本块 tips.j2：" in long.text and "文本框只有 70 毫米" in long.text
    with Session(committed_engine) as session:
        campaign = campaigns.get(session=session, campaign_id=scene.campaign_id)
        assert campaigns.content_hash(session=session, campaign=campaign, period=PERIOD) == before
        assert "tips.j2" not in session.scalars(select(PeriodContent)).one().blocks


def test_artwork_is_checked_by_the_kits_preflight_and_the_reason_shown_next_to_the_slot(
    client: TestClient, people: People, scene: Scene, committed_engine: Engine
) -> None:
    login(client, "planner")
    url = f"/campaigns/{scene.campaign_id}/periods/{PERIOD}/slots/front"
    fields = {"merchant": scene.merchant, "offer_text": "凭函护理八折", "fee": "500"}
    rgb = post(client, url, fields, files={"artwork": ("rgb.jpg", jpeg(mode="RGB"), "image/jpeg")})
    assert rgb.status_code == 422
    slot_html = rgb.text.split('id="slot-front"')[1].split("</section>")[0]
    assert "CMYK" in slot_html and 'class="error"' in slot_html
    small = post(client, url, fields, files={"artwork": ("low.jpg", jpeg((206, 63)), "image/jpeg")})
    small_html = small.text.split('id="slot-front"')[1].split("</section>")[0]
    assert small.status_code == 422 and "dpi" in small_html
    good = post(client, url, fields, files={"artwork": ("front.jpg", jpeg(), "image/jpeg")})
    assert good.status_code == 303, good.text
    with Session(committed_engine) as session:
        booking = session.scalars(select(AdBooking)).one()
        assert (booking.slot, booking.period, booking.fee_fen, booking.artwork_name) == (
            "front",
            PERIOD,
            50_000,
            "front.jpg",
        )
        assert session.get(ArtworkVersion, booking.artwork_sha256) is not None
        assert session.scalars(select(PeriodContent)).one().changed_by == "planner"
    html = page_of(client, f"/campaigns/{scene.campaign_id}/periods/{PERIOD}")
    assert f"/artwork/{booking.artwork_sha256}.png" in html
    png = client.get(f"/campaigns/{scene.campaign_id}/artwork/{booking.artwork_sha256}.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    client.cookies.clear()
    login(client, "finance")
    refused = post(client, url, fields, files={"artwork": ("front.jpg", jpeg(), "image/jpeg")})
    assert refused.status_code == 403


def test_the_proof_shows_five_recipients_with_the_longest_name_and_address_and_is_cached(
    client: TestClient, people: People, scene: Scene
) -> None:
    login(client, "planner")
    html = page_of(client, f"/campaigns/{scene.campaign_id}/periods/{PERIOD}/proof")
    assert html.count('class="proof-piece card"') == 5
    assert LONG_NAME in html and LONG_ADDRESS in html
    images = re.findall(rf'src="(/campaigns/{scene.campaign_id}/proofs/[0-9a-f]{{64}}/[^"]+\.png)"', html)
    assert len(images) == 5 * (2 + 2)  # envelope front and back, two letter pages
    first = client.get(images[0])
    assert first.status_code == 200 and first.content.startswith(b"\x89PNG")
    # The same content gives the same proof (cached by digest); a path outside it is not served.
    assert (
        re.findall(
            r"proofs/([0-9a-f]{64})/",
            page_of(client, f"/campaigns/{scene.campaign_id}/periods/{PERIOD}/proof"),
        )[0]
        in images[0]
    )
    digest = images[0].split("/")[4]
    assert client.get(f"/campaigns/{scene.campaign_id}/proofs/{digest}/..%2Fproof.json").status_code == 404


def test_submitting_for_approval(
    client: TestClient, people: People, scene: Scene, committed_engine: Engine
) -> None:
    login(client, "planner")
    url = f"/campaigns/{scene.campaign_id}/periods/{PERIOD}"
    done = post(client, f"{url}/submit", {})
    assert done.status_code == 303
    assert "等待审批" in page_of(client, url)
    again = post(client, f"{url}/submit", {})
    assert again.status_code == 422 and "已在等待审批" in again.text
    with Session(committed_engine) as session:
        row = session.scalars(select(PeriodContent)).one()
        assert (row.state, row.submitted_by) == ("submitted", "planner")
        assert session.scalars(
            select(AuditEntry).where(AuditEntry.action == "campaign.content.submitted")
        ).first()


def test_an_sms_campaign_has_no_letter_text_slots_or_proof(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    world = committed_world(
        committed_engine,
        name="困难职工帮扶",
        women=3,
        period=None,
        kit="hardship_sms",
        channel="sms",
        print_shop=None,
    )
    login(client, "planner")
    html = page_of(client, f"/campaigns/{world.campaign_id}/periods/{PERIOD}")
    assert 'name="block:' not in html and 'class="slot card"' not in html and "/proof" not in html
    assert "费用估算" in html
    refused = client.get(f"/campaigns/{world.campaign_id}/periods/{PERIOD}/proof")
    assert refused.status_code == 422 and "短信" in refused.text
