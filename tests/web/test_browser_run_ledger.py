"""A real browser (Playwright driving Debian's chromium): a planner starts an approved run on the 运行 page
and its live progress reaches done (embedded executor, a small registry); finance downloads the statement on
the 账目 page and its total matches the ledger; the SMS page counts as the text is typed. Screenshots of every
page at 1366×768 go to ./screenshots/."""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from outreach.ledger import service as ledger
from tests.runs.world import committed_world
from tests.web.conftest import PASSWORD, People

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
    ),
]
SCREENSHOTS = Path("screenshots")


def _shot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"runs-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _sign_in(browser: object, site: str, username: str) -> object:
    context = browser.new_context(  # type: ignore[attr-defined]
        accept_downloads=True, locale="zh-CN", viewport={"width": 1366, "height": 768}
    )
    page = context.new_page()
    page.goto(f"{site}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_a_planner_starts_a_run_and_finance_reads_its_statement(
    site: str, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    world = committed_world(committed_engine, print_shop=people.shop.name, women=15, batch_size=5)
    sms = committed_world(
        committed_engine,
        name="金秋助学短信",
        print_shop=people.shop.name,
        women=0,
        kit="hardship_sms",
        channel="sms",
    )
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

        # The planner starts the approved period and watches it reach done.
        page = _sign_in(browser, site, "planner")
        page.goto(f"{site}/runs")  # type: ignore[attr-defined]
        _shot(page, "list-before")
        page.select_option("#run-choice", f"{world.campaign_id}|2027-Q1")  # type: ignore[attr-defined]
        page.click("form[action='/runs/start'] button")  # type: ignore[attr-defined]
        page.wait_for_url(re.compile(r"/runs/\d+$"))  # type: ignore[attr-defined]
        run_id = int(page.url.rsplit("/", 1)[1])  # type: ignore[attr-defined]
        _shot(page, "progress")
        # The fragment is polled every 2 s; the page itself is never reloaded.
        page.wait_for_selector(  # type: ignore[attr-defined]
            "#run-progress .state-done", timeout=25_000
        )
        done_text = page.inner_text("#run-progress")  # type: ignore[attr-defined]
        assert "15 / 15" in done_text and "3 / 3" in done_text
        page.reload()  # type: ignore[attr-defined]
        assert page.locator("table.batches tbody tr").count() == 3  # type: ignore[attr-defined]
        _shot(page, "done")
        page.goto(f"{site}/runs")  # type: ignore[attr-defined]
        _shot(page, "list-after")

        # The SMS page counts as the text is typed.
        page.goto(f"{site}/sms?campaign={sms.campaign_id}")  # type: ignore[attr-defined]
        page.fill("#sms-text", "工" * 80)  # type: ignore[attr-defined]
        page.wait_for_selector(".sms-parts strong:text('2')")  # type: ignore[attr-defined]
        _shot(page, "sms")

        # Finance reads the statement and downloads its CSV; its total is the ledger's.
        page = _sign_in(browser, site, "finance")
        page.goto(f"{site}/ledger?campaign={world.campaign_id}&period=2027-Q1")  # type: ignore[attr-defined]
        _shot(page, "ledger")
        shown = page.inner_text("#statement-spent")  # type: ignore[attr-defined]
        with page.expect_download() as info:  # type: ignore[attr-defined]
            page.click("text=下载 CSV")  # type: ignore[attr-defined]
        saved = tmp_path / "statement.csv"
        info.value.save_as(saved)
        page.goto(f"{site}/ledger/rates")  # type: ignore[attr-defined]
        _shot(page, "rates")
        page.goto(f"{site}/runs/{run_id}/progress")  # type: ignore[attr-defined]
        browser.close()

    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    total = next(r for r in rows if r[0] == "total")
    with Session(committed_engine) as session:
        st = ledger.statement(session=session, campaign_id=world.campaign_id, period="2027-Q1")
        balance = ledger.balance(session=session, run_id=run_id)
    assert st.spent_fen == balance.net_fen == 1500  # 15 letters at ¥1.00, the fees waived
    assert total[-2] == "15.00" and shown == "¥15.00"
