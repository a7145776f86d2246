"""A real browser (Playwright driving Debian's chromium) at a merchant's counter: sign in, scan a code the
way a barcode scanner does (the characters, then Enter), see it recorded, scan it again and see when it was
used; the page never shows who brought the letter."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outreach.accounts import users
from outreach.accounts.models import Organisation
from outreach.offers.models import AdBooking, Redemption
from outreach.periods import local_date
from outreach.runs.models import Piece
from tests.offers.helpers import a_code, offer_world, started_run
from tests.web.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
    ),
]


def test_a_merchant_scans_a_letter_in_a_real_browser(site: str, committed_engine: Engine) -> None:
    with Session(committed_engine) as session, session.begin():
        world = offer_world(session, women=5)
        run = started_run(session, world.campaign_id)
        booking = session.get(AdBooking, world.booking_id)
        assert booking is not None
        booking.valid_from = booking.valid_until = local_date()
        org = session.get(Organisation, world.merchant_id)
        assert org is not None
        users.add(session=session, username="till", password=PASSWORD, role="merchant", organisation=org)
        code = a_code(session, run.id)
        pieces = session.scalars(select(Piece).where(Piece.run_id == run.id)).all()
        private = {p.name for p in pieces} | {p.unit_name for p in pieces}

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(locale="zh-CN").new_page()
        page.goto(f"{site}/counter")
        assert page.url.endswith("/login")
        page.fill("input[name=username]", "till")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        # The start page sends a merchant on to the counter (where the web service has it do so).
        page.wait_for_url(re.compile(re.escape(site) + r"/(counter)?$"))
        page.goto(f"{site}/counter")
        assert "凭函到店护理八折" in page.content()
        # A scanner types into the focused field and presses Enter.
        page.keyboard.type(code.lower())
        page.keyboard.press("Enter")
        page.wait_for_selector(".outcome-recorded")
        assert "有效" in page.inner_text(".outcome")
        page.keyboard.type(code)
        page.keyboard.press("Enter")
        page.wait_for_selector(".outcome-already")
        assert "已在本店使用过" in page.inner_text(".outcome") and "使用时间" in page.inner_text(".outcome")
        page.fill("#code", "R000001-0000001")
        page.press("#code", "Enter")
        page.wait_for_selector(".outcome-malformed")
        assert "二维码" in page.inner_text(".outcome")
        html = page.content()
        assert not any(value in html for value in private)
        # Without BarcodeDetector (desktop chromium) the camera button stays hidden and typing still works.
        assert page.locator("#camera").is_hidden()
        page.goto(f"{site}/counter/figures")
        assert "&lt;5" in page.content() or "<5" in page.inner_text("main")
        browser.close()
    with Session(committed_engine) as session:
        assert len(session.scalars(select(Redemption)).all()) == 1
