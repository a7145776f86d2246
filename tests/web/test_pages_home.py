"""工作台: this quarter's campaigns and their state (waiting and why, running, done), the next scheduled runs,
budget bars, recent imports, and what needs a person; print shops and merchants go to their own pages."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences.importer import import_registry
from audiences.models import Suppression, Worker
from audiences.sample import write_sample
from outreach.campaigns import service as campaigns
from outreach.ledger import budgets
from outreach.periods import local_date, quarter_of
from outreach.runs import service as runs
from outreach.runs.models import Batch
from tests.runs.world import committed_world
from tests.web.conftest import People, busy_quarter, login


def _section(html: str, title: str) -> str:
    start = html.index(title)
    end = html.find("<h2", start + len(title))
    return html[start : end if end != -1 else len(html)]


def test_the_home_page_shows_the_quarter(
    client: TestClient, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    period, run_id = busy_quarter(committed_engine, people)
    with Session(committed_engine) as session, session.begin():
        # One piece failed and the batches not downloaded five days after the run (busy_quarter), one letter
        # returned.
        batches = session.scalars(select(Batch).where(Batch.run_id == run_id)).all()
        worker_id = session.scalars(select(Worker.id).limit(1)).one()
        session.add(Suppression(channel="letter", reason="returned_mail", worker_id=worker_id))
    path = tmp_path / "名册.csv"
    write_sample(path, workers=20, seed=1)
    with Session(committed_engine) as session:
        import_registry(session=session, path=path)
        session.commit()

    login(client, "planner")
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert f"{period} 工作台" in html and 'aria-current="page"' in html
    this_quarter = _section(html, "本季度的活动")
    assert "俏佳人" in this_quarter and "金秋助学" in this_quarter
    assert "等待审批" in this_quarter and "活动还从未审批通过" in this_quarter
    upcoming = _section(html, "即将定时运行")
    assert "俏佳人" in upcoming and "需先审批" in upcoming
    assert str(quarter_of(local_date()).next()) in upcoming
    budget = _section(html, "预算")
    assert "¥6,000.00" in budget and "<svg" in budget and 'class="bar-used"' in budget
    assert "名册.csv" in _section(html, "最近的导入")
    attention = _section(html, "需要处理")
    assert f"运行 {run_id}" in attention and "1 件失败" in attention
    assert f"{len(batches)} 个批次超过 3 天未被印刷厂下载" in attention
    assert "1 封信被退回" in attention
    assert re.search(rf'href="/runs/{run_id}"', attention)


def test_a_running_run_shows_its_progress(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    period = str(quarter_of(local_date()))
    world = committed_world(committed_engine, women=6, period=period, print_shop=people.shop.name)
    with Session(committed_engine) as session, session.begin():
        budgets.set_budget(
            session=session, campaign_id=world.campaign_id, period=period.split("-")[0], amount_fen=100_000
        )
        campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
        run_id = runs.start(session=session, campaign=campaign, period=period).id
    login(client, "approver")
    html = client.get("/").text
    assert '<progress max="6" value="0"' in html and "0 / 6" in html and f'href="/runs/{run_id}"' in html
    assert "最近的导入" not in html  # the approver does not read the registry


def test_an_empty_union_has_a_calm_home(client: TestClient, people: People) -> None:
    login(client, "finance")
    html = client.get("/").text
    assert "目前没有需要处理的事项" in html and "还没有活动" in html


def test_print_shops_and_merchants_go_to_their_own_pages(client: TestClient, people: People) -> None:
    login(client, "shop")
    assert client.get("/", follow_redirects=False).headers["location"] == "/portal"
    client.cookies.clear()
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
