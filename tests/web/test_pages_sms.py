"""短信 page: the text of an SMS campaign counted as it is typed (signature and opt-out included), the parts
at the 70 / 67 limits, the cost from the rate card's part price, the sending hours; a bad template is shown,
not raised; a planner saves the period's text (checked like the kit's) and the run sends it; print shops see
none of it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.render import KitOptions, load_kit_cached
from outreach.runs import service as runs
from outreach.runs.models import Batch
from outreach.settings import get_settings
from outreach.storage import get_storage
from tests.runs.world import committed_world
from tests.web.conftest import People, csrf_of, login
from workers.local import run_locally


def _parts(html: str) -> int:
    m = re.search(r'class="sms-parts"><strong>(\d+)</strong>', html)
    assert m, html
    return int(m.group(1))


def _length(html: str) -> int:
    m = re.search(r'class="sms-length">([\d,]+)<', html)
    assert m, html
    return int(m.group(1).replace(",", ""))


def test_the_count_follows_the_text_with_signature_and_opt_out(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    world = committed_world(
        committed_engine, print_shop=people.shop.name, women=10, kit="hardship_sms", channel="sms"
    )
    kit = load_kit_cached("hardship_sms", KitOptions.from_settings(get_settings()))
    frame = len(f"【{kit.sms_signature}】") + len(kit.sms_opt_out)
    assert kit.sms_opt_out and frame > 2
    login(client, "planner")
    page = client.get("/sms")
    assert page.status_code == 200
    assert f"【{kit.sms_signature}】" in page.text and kit.sms_opt_out in page.text
    assert 'hx-get="/sms/count"' in page.text and "08:00 至 20:00" in page.text
    assert "金秋助学" in page.text  # the kit's own text, ready to edit

    def count(text: str) -> str:
        answer = client.get("/sms/count", params={"campaign": world.campaign_id, "text": text})
        assert answer.status_code == 200 and "<html" not in answer.text
        return answer.text

    # Exactly 70 characters with signature and opt-out is one message; one more makes two parts of 67.
    fits = "工" * (70 - frame)
    assert _length(count(fits)) == 70 and _parts(count(fits)) == 1
    over = fits + "会"
    assert _length(count(over)) == 71 and _parts(count(over)) == 2
    three = "工" * (67 * 2 + 1 - frame)
    assert _parts(count(three)) == 3
    # Cost: 10 women who consented x parts x ¥0.05.
    answer = count(over)
    assert re.search(r'class="sms-total"><strong>¥1\.00</strong>', answer), answer
    assert "¥0.10" in answer  # per message: two parts
    # A template variable is filled for the sample recipient (王秀英 + 女士).
    named = count("{{ name }}{{ honorific }}您好")
    assert "王秀英女士您好" in named


def test_a_bad_template_is_shown_not_raised(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    world = committed_world(
        committed_engine, print_shop=people.shop.name, women=3, kit="hardship_sms", channel="sms"
    )
    login(client, "planner")
    for text in ("{{ name ", "{{ no_such_variable }}"):
        answer = client.get("/sms/count", params={"campaign": world.campaign_id, "text": text})
        assert answer.status_code == 200 and 'role="alert"' in answer.text, text
        assert "hardship_sms" in answer.text


def test_without_javascript_the_form_counts_too(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    world = committed_world(
        committed_engine, print_shop=people.shop.name, women=3, kit="hardship_sms", channel="sms"
    )
    login(client, "finance")
    page = client.get("/sms", params={"campaign": world.campaign_id, "text": "工" * 80})
    assert page.status_code == 200 and _parts(page.text) == 2


def test_letter_campaigns_and_print_shops(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    world = committed_world(committed_engine, print_shop=people.shop.name, women=3)
    login(client, "planner")
    page = client.get("/sms")
    assert page.status_code == 200 and "还没有发短信的活动" in page.text
    answer = client.get("/sms/count", params={"campaign": world.campaign_id, "text": "x"})
    assert "不发短信" in answer.text
    client.cookies.clear()
    login(client, "shop")
    assert client.get("/sms").status_code == 403
    assert client.get("/sms/count", params={"campaign": world.campaign_id, "text": "x"}).status_code == 403


def test_a_planner_saves_the_periods_text_and_the_run_sends_it(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    world = committed_world(
        committed_engine, print_shop=people.shop.name, women=4, kit="hardship_sms", channel="sms"
    )
    login(client, "planner")
    page = client.get("/sms")
    assert "套件中的正文" in page.text and "保存为 2027-Q1 的正文" in page.text
    token = csrf_of(page.text)
    bad = client.post(
        "/sms/save", data={"csrf_token": token, "campaign": world.campaign_id, "text": "{{ name "}
    )
    assert bad.status_code == 422 and 'role="alert"' in bad.text and "{{ name " in bad.text
    too_long = client.post(
        "/sms/save", data={"csrf_token": token, "campaign": world.campaign_id, "text": "工" * 200}
    )
    assert too_long.status_code == 422 and "134" in too_long.text  # the kit's maximum
    text = "{{ name }}{{ honorific }}，金秋助学申请本月截止，请交单位工会。"
    saved = client.post(
        "/sms/save",
        data={"csrf_token": token, "campaign": world.campaign_id, "text": text},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("done=saved")
    page = client.get(saved.headers["location"])
    assert "本期自己的正文" in page.text and "金秋助学申请本月截止" in page.text
    # Submitted for approval on the campaign's own page, which the SMS page links to.
    period_page = client.get(f"/campaigns/{world.campaign_id}/periods/2027-Q1")
    assert (
        period_page.status_code == 200
        and f'href="/campaigns/{world.campaign_id}/periods/2027-Q1"' in page.text
    )
    # A change after approval: the run waits for a new approval, then sends the period's text.
    with Session(committed_engine) as session, session.begin():
        campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
        assert campaigns.approval_problem(session=session, campaign=campaign, period="2027-Q1")
        campaigns.approve(session=session, campaign=campaign, period="2027-Q1")
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    run_locally(run_id)
    with Session(committed_engine) as session:
        batch = session.scalars(select(Batch).where(Batch.run_id == run_id)).one()
        key = str(batch.files["sms.csv"]["key"])
    with get_storage().open(key) as f:
        sent = f.read().decode("utf-8-sig")
    assert sent.count("金秋助学申请本月截止") == 4 and "8月31日" not in sent


def test_only_planners_save(client: TestClient, people: People, committed_engine: Engine) -> None:
    world = committed_world(
        committed_engine, print_shop=people.shop.name, women=2, kit="hardship_sms", channel="sms"
    )
    login(client, "approver")
    page = client.get("/sms")
    assert page.status_code == 200 and "保存为" not in page.text
    counted = client.post(
        "/sms/preview",
        data={"csrf_token": csrf_of(page.text), "campaign": world.campaign_id, "text": "工" * 80},
    )
    assert counted.status_code == 200 and _parts(counted.text) == 2
    refused = client.post(
        "/sms/save", data={"csrf_token": csrf_of(page.text), "campaign": world.campaign_id, "text": "x"}
    )
    assert refused.status_code == 403
