"""A real browser (Playwright driving Debian's chromium) through the print-shop portal: sign in, see only
the shop's batches, download one and check its checksum, mark it printed and mailed, record returned letters;
the union's suppression list shows the effect."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences.models import Suppression
from outreach.campaigns import service as campaigns
from outreach.runs import service as runs
from outreach.runs.models import Batch, piece_number
from tests.runs.world import committed_world
from tests.web.conftest import PASSWORD, People
from workers.local import run_locally

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
    ),
]


def test_a_print_shop_works_its_batch_in_a_real_browser(
    site: str, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    world = committed_world(committed_engine, women=6, batch_size=10, print_shop=people.shop.name)
    with Session(committed_engine) as session, session.begin():
        campaign = campaigns.get_by_name(session=session, name=world.campaign)
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    run_locally(run_id)
    with Session(committed_engine) as session:
        batch = session.scalars(select(Batch).where(Batch.run_id == run_id)).one()
    letters_sha = str(batch.files["letters.pdf"]["sha256"])

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(accept_downloads=True, locale="zh-CN").new_page()
        page.goto(f"{site}/portal")
        assert page.url.endswith("/login")
        page.fill("input[name=username]", "shop")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{site}/portal")
        rows = page.locator("table.list tbody tr")
        assert rows.count() == 1 and world.campaign in rows.first.inner_text()

        page.click(f"a[href='/portal/batches/{batch.id}']")
        assert letters_sha in page.content()
        with page.expect_download() as info:
            page.click(f"a[href='/portal/batches/{batch.id}/files/letters.pdf']")
        saved = tmp_path / "letters.pdf"
        info.value.save_as(saved)
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == letters_sha

        page.click("button[value=printed]")
        assert "已记录" in page.inner_text("p.flash")
        page.click("button[value=mailed]")
        assert "本批次已交邮局" in page.content()

        returned = piece_number(run_id, 1)
        page.fill("textarea[name=numbers]", returned)
        page.click("text=记录退信")
        assert "退信已记录" in page.inner_text("p.flash")
        browser.close()

    with Session(committed_engine) as session:
        stored = session.get(Batch, batch.id)
        assert stored is not None and stored.state == "mailed" and stored.printed_at is not None
        suppressed = session.scalars(select(Suppression).where(Suppression.reason == "returned_mail")).all()
        assert len(suppressed) == 1 and returned in (suppressed[0].note or "")
