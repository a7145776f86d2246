"""A planner in a real browser (Playwright driving Debian's chromium): uploads the county sample and sees
its rejects, builds 女职工 with the guided builder and gets the CLI's count, types an expression and sees
the count follow, saves the audience. Screenshots of every page at 1366×768 go to ./screenshots/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences import service as audiences
from audiences.models import Audience, RegistryImport
from audiences.sample import write_sample
from tests.web.conftest import PASSWORD, People, busy_quarter

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path("screenshots")
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
    ),
]


def _shot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"planner-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_a_planner_imports_the_registry_and_builds_an_audience(
    site: str,
    people: People,
    committed_engine: Engine,
    tmp_path: Path,
) -> None:
    county = tmp_path / "尤溪县职工名册.csv"
    write_sample(county, workers=2000, seed=2027, malformed=5)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            accept_downloads=True, locale="zh-CN", viewport={"width": 1366, "height": 768}
        )
        page = context.new_page()
        page.goto(f"{site}/")
        page.fill("input[name=username]", "planner")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{site}/")
        assert "工作台" in page.inner_text("h1")
        _shot(page, "1-home-empty")

        # The registry: upload the county sample; the progress page goes on to the result by itself.
        page.click("nav.sections >> text=名址库")
        page.wait_for_url(f"{site}/registry")
        _shot(page, "2-registry")
        page.set_input_files("input[name=file]", str(county))
        page.click("text=上传并导入")
        page.wait_for_url(re.compile(r".*/registry/imports/\d+.*"), timeout=30_000)
        _shot(page, "3-import-result")
        counts = page.inner_text("div.counts")
        assert "2,000" in counts and "新增" in counts and "拒收" in counts
        rejects = page.locator("table.rejects tbody tr")
        assert rejects.count() == 5
        assert all(rejects.nth(i).locator("td").first.inner_text().isdigit() for i in range(5))
        with page.expect_download() as info:
            page.click("text=下载拒收的行")
        saved = tmp_path / "rejects.csv"
        info.value.save_as(saved)
        assert len([line for line in saved.read_text(encoding="utf-8-sig").splitlines() if line]) == 6
        with Session(committed_engine) as session:
            record = session.scalars(select(RegistryImport)).one()
            assert (record.inserted, record.rejected) == (2000, 5)

        # A large file's progress page, as it looks while the import runs (htmx polls it every second).
        from outreach.web.pages.registry import ImportJob, _write_job

        running = ImportJob(
            token="screenshot-job",
            filename="全县名册.xlsx",
            size=48_000_000,
            rows=120_000,
            expected_rows=300_000,
        )
        _write_job(running)
        page.goto(f"{site}/registry/uploads/screenshot-job")
        assert page.get_attribute("progress", "value") == "40"
        _shot(page, "3b-import-progress")
        running.state, running.import_id = "done", record.id
        _write_job(running)
        page.wait_for_url(re.compile(rf".*/registry/imports/{record.id}.*"))  # htmx hands over to the result

        # Look a worker up; her mobile is masked.
        page.click("text=返回名址库")
        page.fill("input[name=q]", "城关")
        page.press("input[name=q]", "Enter")
        page.wait_for_url(re.compile(r".*/registry\?q=.*"))
        _shot(page, "4-registry-search")
        page.locator("a[href^='/registry/units/']").first.click()
        _shot(page, "5-unit")
        page.locator("a[href^='/registry/workers/']").first.click()
        assert re.search(r"1\d\d\*{4}\d{4}", page.inner_text("dl.facts"))
        _shot(page, "6-worker")

        # The guided builder: 性别 = 女, without typing an expression.
        page.click("nav.sections >> text=受众")
        page.wait_for_url(f"{site}/audiences")
        page.select_option("select[name=field]", "gender")
        page.wait_for_selector("select[name=choice]")  # htmx swapped the operator and the values in
        page.select_option("select[name=op]", "=")
        page.select_option("select[name=choice]", "女")
        page.click("text=加入筛选条件")
        page.wait_for_selector("p.total")
        assert page.input_value("#expression") == "性别 = '女'"
        with Session(committed_engine) as session:
            expected = audiences.count(session=session, expression="gender = 'F'").total
        assert expected > 900
        shown = int(page.inner_text("p.total strong").replace(",", ""))
        assert shown == expected
        _shot(page, "7-audience-built")

        # Typing: the count follows the expression (htmx, after a pause), and a mistake points at its place.
        page.fill("#expression", "")
        page.type("#expression", "性别 = '女' and 年龄 >= 40", delay=20)
        with Session(committed_engine) as session:
            older = audiences.count(session=session, expression="性别 = '女' and 年龄 >= 40").total
        page.wait_for_function(
            "n => document.querySelector('p.total strong')?.textContent.replace(/,/g, '') === String(n)",
            arg=older,
        )
        # The save form takes the expression as typed (htmx swaps its hidden field out of band).
        assert page.input_value("#save-expression") == "性别 = '女' and 年龄 >= 40"
        page.type("#expression", " and", delay=20)
        page.wait_for_selector("#live .error[role=alert] mark")
        _shot(page, "8-audience-error")

        # Save 女职工: the builder's expression again, then the name.
        page.goto(f"{site}/audiences?expression=" + "性别 = '女'")
        page.fill("input[name=name]", "女职工")
        page.click("button:has-text('保存')")
        page.wait_for_selector("p.flash")
        assert "女职工" in page.inner_text("p.flash")
        _shot(page, "9-audience-saved")
        page.click("nav.sections >> text=工作台")
        _shot(page, "10-home")
        assert "尤溪县职工名册.csv" in page.content()
        browser.close()

    with Session(committed_engine) as session:
        saved_audience = session.scalars(select(Audience)).one()
        assert saved_audience.name == "女职工"
        assert audiences.count(session=session, expression=saved_audience.expression).total == expected


def test_the_home_page_of_a_busy_quarter_in_a_real_browser(
    site: str, people: People, committed_engine: Engine
) -> None:
    busy_quarter(committed_engine, people)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768}).new_page()
        page.goto(f"{site}/login")
        page.fill("input[name=username]", "approver")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{site}/")
        attention = page.inner_text("section.attention")
        assert "1 件失败" in attention and "未被印刷厂下载" in attention
        campaigns_table = page.locator("table.list").first.inner_text()
        assert "俏佳人" in campaigns_table and "金秋助学" in campaigns_table and "等待审批" in campaigns_table
        assert page.locator("svg.budget-bar").count() == 1
        _shot(page, "11-home-busy")
        browser.close()
