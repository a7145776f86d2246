"""审批 pages through the web service: the list, the approver's view (proof, estimate, audience count, what
changed since the last approval: text diff and artwork side by side), approving, sending back with a comment,
four eyes (whoever made the last change cannot approve it), and the roles that may not approve."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outreach.accounts.auth_models import AuditEntry
from outreach.campaigns import service as campaigns
from outreach.campaigns.content_models import PeriodContent
from outreach.runs import service as runs
from outreach.runs.models import Batch
from outreach.storage import get_storage
from tests.web.conftest import People, csrf_of, login
from tests.web.test_pages_campaigns import PERIOD, Scene, jpeg, make_scene
from workers.local import run_locally


@pytest.fixture
def scene(committed_engine: Engine, people: People) -> Scene:
    return make_scene(committed_engine, people)


def post(client: TestClient, url: str, data: dict[str, str], **kwargs: Any) -> Any:
    token = csrf_of(client.get("/approvals").text)
    return client.post(url, data={**data, "csrf_token": token}, follow_redirects=False, **kwargs)


def prepare(client: TestClient, scene: Scene, *, who: str = "planner", extra: str = "祝您新春快乐！") -> None:
    """`who` rewrites the letter's body, books the front slot with new artwork and submits the period."""
    client.cookies.clear()
    login(client, who)
    url = f"/campaigns/{scene.campaign_id}/periods/{PERIOD}"
    html = client.get(url).text
    body = re.search(r'name="block:letter_body.j2"[^>]*>([^<]*)</textarea>', html)
    assert body is not None
    text = body.group(1).replace("&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")
    assert post(client, f"{url}/text", {"block:letter_body.j2": text + "\n" + extra}).status_code == 303
    art = {"merchant": scene.merchant, "offer_text": "凭函护理八折", "fee": "0"}
    booked = post(client, f"{url}/slots/front", art, files={"artwork": ("front.jpg", jpeg(), "image/jpeg")})
    assert booked.status_code == 303, booked.text
    assert post(client, f"{url}/submit", {}).status_code == 303
    client.cookies.clear()


def test_the_list_shows_what_waits_for_approval(client: TestClient, people: People, scene: Scene) -> None:
    prepare(client, scene)
    login(client, "approver")
    html = client.get("/approvals").text
    assert f'href="/approvals/{scene.campaign_id}/{PERIOD}"' in html and "planner" in html


def test_the_approver_sees_proof_estimate_count_and_what_changed(
    client: TestClient, people: People, scene: Scene
) -> None:
    prepare(client, scene)
    login(client, "approver")
    html = client.get(f"/approvals/{scene.campaign_id}/{PERIOD}").text
    assert html.count('class="proof-piece card"') == 5
    assert "可送达收件人" in html and "<dd>8</dd>" in html  # the audience count
    assert "应付合计" in html and "−¥1.20" in html  # the estimate with its waived fees
    # The text diff: the added line against the kit as shipped (nothing approved before).
    assert "与套件原样比较" in html and "<ins>祝您新春快乐！</ins>" in html
    # The artwork of the front slot, old and new side by side.
    section = html.split('class="artwork-diff card"')[1].split("</section>")[0]
    assert section.count("<img") == 2 and "修改前" in section and "修改后" in section
    assert 'action="/approvals/' in html and "/approve" in html


def test_the_planner_who_made_the_change_cannot_approve_it(
    client: TestClient, people: People, scene: Scene, committed_engine: Engine
) -> None:
    prepare(client, scene)
    login(client, "planner")
    page = client.get(f"/approvals/{scene.campaign_id}/{PERIOD}").text
    assert f"/approvals/{scene.campaign_id}/{PERIOD}/approve" not in page  # the button is not offered
    assert "您不能审批" in page
    refused = post(client, f"/approvals/{scene.campaign_id}/{PERIOD}/approve", {})
    assert refused.status_code == 403
    assert "双人复核" in refused.text and "另一位同事" in refused.text
    with Session(committed_engine) as session:
        assert session.scalars(select(PeriodContent)).one().state == "submitted"
        campaign = campaigns.get(session=session, campaign_id=scene.campaign_id)
        assert campaign.approved_period is None and campaign.state == "draft"
        assert session.scalars(
            select(AuditEntry).where(AuditEntry.action == "campaign.approve_refused")
        ).first()


def test_an_approver_approves_and_the_run_may_start(
    client: TestClient, people: People, scene: Scene, committed_engine: Engine
) -> None:
    prepare(client, scene)
    login(client, "approver")
    done = post(client, f"/approvals/{scene.campaign_id}/{PERIOD}/approve", {})
    assert done.status_code == 303, done.text
    assert "已审批通过" in client.get(done.headers["location"]).text
    with Session(committed_engine) as session:
        row = session.scalars(select(PeriodContent)).one()
        assert (row.state, row.reviewed_by) == ("approved", "approver")
        assert (
            row.approved_snapshot is not None
            and "祝您新春快乐！" in row.approved_snapshot["blocks"]["letter_body.j2"]
        )
        campaign = campaigns.get(session=session, campaign_id=scene.campaign_id)
        assert campaign.approved_period == PERIOD
        assert campaigns.approval_problem(session=session, campaign=campaign, period=PERIOD) is None
    # Approving twice is refused: it no longer waits.
    again = post(client, f"/approvals/{scene.campaign_id}/{PERIOD}/approve", {})
    assert again.status_code == 409
    # A later change voids the approval (the run would wait) and the diff is against the approved text.
    client.cookies.clear()
    login(client, "planner")
    url = f"/campaigns/{scene.campaign_id}/periods/{PERIOD}"
    html = client.get(url).text
    tips = re.search(r'name="block:tips.j2"[^>]*>([^<]*)</textarea>', html)
    assert tips is not None
    changed = post(client, f"{url}/text", {"block:tips.j2": tips.group(1).replace("1小时", "2小时")})
    assert changed.status_code == 303
    with Session(committed_engine) as session:
        campaign = campaigns.get(session=session, campaign_id=scene.campaign_id)
        assert campaigns.approval_problem(session=session, campaign=campaign, period=PERIOD) is not None
    review = client.get(f"/approvals/{scene.campaign_id}/{PERIOD}").text
    assert f"与 {PERIOD} 已审批的内容比较" in review
    assert "<del>- 哺乳未满1周岁婴儿的，每天安排1小时哺乳时间。</del>" in review
    assert "<ins>- 哺乳未满1周岁婴儿的，每天安排2小时哺乳时间。</ins>" in review
    assert "letter_body.j2" not in review.split("修改了什么")[1].split("费用估算")[0]


def test_sending_back_needs_a_comment_and_shows_it_to_the_planner(
    client: TestClient, people: People, scene: Scene, committed_engine: Engine
) -> None:
    prepare(client, scene)
    login(client, "approver")
    url = f"/approvals/{scene.campaign_id}/{PERIOD}/send-back"
    empty = post(client, url, {"comment": "  "})
    assert empty.status_code == 422 and "必须填写意见" in empty.text
    sent = post(client, url, {"comment": "正文第二段请改为新版条例的表述"})
    assert sent.status_code == 303
    client.cookies.clear()
    login(client, "planner")
    html = client.get(f"/campaigns/{scene.campaign_id}/periods/{PERIOD}").text
    assert "已退回" in html and "正文第二段请改为新版条例的表述" in html and "approver 退回" in html
    with Session(committed_engine) as session:
        row = session.scalars(select(PeriodContent)).one()
        assert (row.state, row.reviewed_by) == ("returned", "approver")


def test_finance_and_print_shops_cannot_approve(client: TestClient, people: People, scene: Scene) -> None:
    prepare(client, scene)
    login(client, "finance")
    page = client.get(f"/approvals/{scene.campaign_id}/{PERIOD}").text
    assert "/approve" not in page and "不能审批" in page
    assert post(client, f"/approvals/{scene.campaign_id}/{PERIOD}/approve", {}).status_code == 403
    assert (
        post(client, f"/approvals/{scene.campaign_id}/{PERIOD}/send-back", {"comment": "x"}).status_code
        == 403
    )
    client.cookies.clear()
    login(client, "shop")
    assert client.get("/approvals").status_code == 403
    assert client.get(f"/approvals/{scene.campaign_id}/{PERIOD}").status_code == 403


def test_a_second_planner_may_approve_a_colleagues_change(
    client: TestClient, people: People, scene: Scene, committed_engine: Engine
) -> None:
    from outreach.accounts import users
    from outreach.accounts.models import Organisation
    from tests.web.conftest import PASSWORD

    with Session(committed_engine) as session, session.begin():
        org = session.get(Organisation, people.union.id)
        assert org is not None
        users.add(session=session, username="planner2", password=PASSWORD, role="planner", organisation=org)
    prepare(client, scene)
    login(client, "planner2")
    assert post(client, f"/approvals/{scene.campaign_id}/{PERIOD}/approve", {}).status_code == 303


def test_the_run_prints_the_approved_text(
    client: TestClient, people: People, scene: Scene, committed_engine: Engine, tmp_path: Path
) -> None:
    prepare(client, scene, extra="祝您新春快乐，阖家幸福！")
    login(client, "approver")
    assert post(client, f"/approvals/{scene.campaign_id}/{PERIOD}/approve", {}).status_code == 303
    with Session(committed_engine) as session, session.begin():
        campaign = campaigns.get(session=session, campaign_id=scene.campaign_id)
        run_id = runs.start(session=session, campaign=campaign, period=PERIOD).id
    run_locally(run_id)
    with Session(committed_engine) as session:
        batch = session.scalars(select(Batch).where(Batch.run_id == run_id)).first()
        assert batch is not None
    letters = tmp_path / "letters.pdf"
    with get_storage().open(str(batch.files["letters.pdf"]["key"])) as fh:
        letters.write_bytes(fh.read())
    text = subprocess.run(["pdftotext", str(letters), "-"], capture_output=True, text=True, check=True).stdout
    assert "祝您新春快乐，阖家幸福！" in "".join(text.split())
