"""The 俏佳人 campaign in a real browser (Playwright driving Debian's chromium): a planner creates it with
the wizard, replaces an ad slot's artwork with a 300-dpi CMYK JPEG, sees the proof and submits it; her own
attempt to approve is refused; an approver sees what changed and approves. Screenshots at 1366×768 go to
./screenshots/."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences import service as audiences
from outreach.campaigns import service as campaigns
from outreach.campaigns.content_models import PeriodContent
from outreach.ledger import service as ledger
from tests.runs.world import committed_world
from tests.web.conftest import PASSWORD, People
from tests.web.test_pages_campaigns import LONG_NAME, jpeg

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path("screenshots")
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
    ),
]
PERIOD = "2027-Q1"


def _shot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"campaign-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _sign_in(page: object, site: str, who: str) -> None:
    page.goto(f"{site}/login")  # type: ignore[attr-defined]
    page.fill("input[name=username]", who)  # type: ignore[attr-defined]
    page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{site}/")  # type: ignore[attr-defined]


def test_a_planner_prepares_qiaojiaren_and_an_approver_approves_it(
    site: str, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    # The registry, a rate card and a merchant exist; the campaign does not (the world's own is another one).
    committed_world(
        committed_engine,
        name="registry",
        women=8,
        period=None,
        print_shop=people.shop.name,
        extra_names=(LONG_NAME,),
    )
    with Session(committed_engine) as session, session.begin():
        audiences.save(session=session, name="女职工", expression="gender = 'F'")
        from outreach.offers import service as offers

        offers.add_merchant(session=session, name="尤溪美丽美容院", licence_no="91350426MA2XXXXX0M")
        rate_card = sorted({c.code for c in ledger.rate_card_versions(session=session)})[0]
    artwork = tmp_path / "美容院-信封正面.jpg"
    artwork.write_bytes(jpeg())  # 614 × 189 pixels: 52 × 16 mm at 300 dpi, CMYK
    started = time.monotonic()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--lang=zh-CN"])
        context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768})
        page = context.new_page()
        _sign_in(page, site, "planner")

        # The wizard: four steps, each a plain form.
        page.click("nav.sections >> text=活动")
        page.wait_for_url(f"{site}/campaigns")
        _shot(page, "1-list")
        page.click("text=新建活动")
        page.fill("input[name=name]", "俏佳人")
        page.select_option("select[name=audience]", "女职工")
        page.check("input[name=channel][value=letter]")
        _shot(page, "2-wizard-1")
        page.click("button[value=next]")
        page.select_option("select[name=kit]", "qiaojiaren")
        page.select_option("select[name=rate_card]", rate_card)
        page.select_option("select[name=print_shop]", people.shop.name)
        _shot(page, "3-wizard-2")
        page.click("button[value=next]")
        page.fill("input[name=budget]", "6000")
        page.fill("input[name=budget_period]", "2027")
        page.check("input[name=schedule][value=quarterly]")
        page.click("button[value=next]")
        _shot(page, "4-wizard-confirm")
        assert "qiaojiaren" in page.inner_text("dl.facts") and "6000" in page.inner_text("dl.facts")
        page.click("text=创建活动")
        page.wait_for_url(re.compile(r".*/campaigns/\d+\?done=created"))
        _shot(page, "5-campaign")
        campaign_id = int(page.url.split("/campaigns/")[1].split("?")[0])

        # The content of 2027-Q1: replace the front slot's artwork; the kit's checks pass it.
        page.fill("input[name=period]", PERIOD)
        page.click("text=打开这一期的内容")
        page.wait_for_url(f"{site}/campaigns/{campaign_id}/periods/{PERIOD}")
        slot = page.locator("#slot-front")
        old_src = slot.locator("img").get_attribute("src")
        slot.locator("input[name=artwork]").set_input_files(str(artwork))
        slot.locator("select[name=merchant]").select_option("尤溪美丽美容院")
        slot.locator("input[name=offer_text]").fill("凭本函护理项目八折")
        slot.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(rf".*/periods/{PERIOD}\?done=artwork.*"))
        assert "已通过套件检查" in page.inner_text("p.flash")
        new_src = page.locator("#slot-front img").get_attribute("src")
        assert new_src != old_src and "尤溪美丽美容院" in page.inner_text("#slot-front")
        _shot(page, "6-content")
        body = page.locator("textarea[name='block:letter_body.j2']")
        body.fill(body.input_value() + "\n祝您新春快乐，阖家幸福！")
        page.click("text=保存文字")
        page.wait_for_url(re.compile(rf".*/periods/{PERIOD}\?done=text.*"))
        assert "本期已改写" in page.inner_text("#text ~ form")

        # The proof: five recipients, the longest name among them, every page an image that loaded.
        page.click("text=查看校样")
        page.wait_for_url(f"{site}/campaigns/{campaign_id}/periods/{PERIOD}/proof", timeout=60_000)
        assert page.locator("section.proof-piece").count() == 5
        assert LONG_NAME in page.inner_text("main")
        images = page.locator("section.proof-piece img")
        assert images.count() == 20
        loaded = "[...document.querySelectorAll('section.proof-piece img')].every(i => i.naturalWidth > 0)"
        page.wait_for_function(f"() => {loaded}")
        _shot(page, "7-proof")
        page.go_back()
        page.click("text=提交审批")
        page.wait_for_url(re.compile(r".*done=submitted"))

        # Her own change: the approval page offers no button, and a posted approval is refused.
        page.goto(f"{site}/approvals/{campaign_id}/{PERIOD}")
        assert page.locator(f"form[action='/approvals/{campaign_id}/{PERIOD}/approve']").count() == 0
        assert "您不能审批" in page.inner_text("main")
        _shot(page, "8-own-change")
        token = page.locator("input[name=csrf_token]").first.get_attribute("value")
        refused = page.request.post(
            f"{site}/approvals/{campaign_id}/{PERIOD}/approve", form={"csrf_token": token or ""}
        )
        assert refused.status == 403 and "双人复核" in refused.text()
        context.clear_cookies()

        # The approver: the list, what changed (the artwork old and new), the estimate; approves.
        _sign_in(page, site, "approver")
        page.click("nav.sections >> text=审批")
        _shot(page, "9-approvals")
        page.click(f"a[href='/approvals/{campaign_id}/{PERIOD}']")
        diff = page.locator("section.artwork-diff")
        assert diff.count() == 1 and diff.locator("img").count() == 2
        assert "应付合计" in page.inner_text("main")
        assert "祝您新春快乐，阖家幸福！" in page.inner_text("table.diff ins")
        _shot(page, "9b-approval")
        page.click("text=审批通过 2027-Q1 的内容")
        page.wait_for_url(re.compile(r".*done=approved"))
        assert "已审批通过" in page.inner_text("p.flash")
        _shot(page, "10-approved")
        browser.close()
    elapsed = time.monotonic() - started

    with Session(committed_engine) as session:
        campaign = campaigns.get(session=session, campaign_id=campaign_id)
        assert (campaign.name, campaign.state, campaign.approved_period) == ("俏佳人", "approved", PERIOD)
        assert campaigns.approval_problem(session=session, campaign=campaign, period=PERIOD) is None
        row = session.scalars(select(PeriodContent).where(PeriodContent.campaign_id == campaign_id)).one()
        assert (row.changed_by, row.reviewed_by) == ("planner", "approver")
    assert elapsed < 30, f"the browser task took {elapsed:.1f} s"
