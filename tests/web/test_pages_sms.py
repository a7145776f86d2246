"""短信 page: the text of an SMS campaign counted as it is typed (signature and opt-out included), the parts
at the 70 / 67 limits, the cost from the rate card's part price, the sending hours; a bad template is shown,
not raised; print shops see none of it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from outreach.render import KitOptions, load_kit_cached
from outreach.settings import get_settings
from tests.runs.world import committed_world
from tests.web.conftest import People, login


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
