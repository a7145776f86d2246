"""账目 pages: finance reads budgets, a statement with its chart, downloads the same CSV and PDF as the CLI;
sets a budget version with a reason, a rate card version in the fee grammar, an adjustment with a required
reason; planners read but change nothing; print shops see none of it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.ledger import service as ledger
from outreach.ledger.documents import write_statement_csv
from outreach.ledger.models import LedgerEntry, RateCard
from outreach.runs import service as runs
from tests.runs.world import committed_world
from tests.web.conftest import People, csrf_of, login
from workers.local import run_locally


def _done_run(engine: Engine, people: People, women: int = 8) -> int:
    world = committed_world(engine, print_shop=people.shop.name, women=women, batch_size=5)
    with Session(engine) as session, session.begin():
        campaign = campaigns.get_by_name(session=session, name=world.campaign)
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    run_locally(run_id)
    return world.campaign_id


def test_finance_reads_the_statement_and_downloads_what_the_cli_writes(
    client: TestClient, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    campaign_id = _done_run(committed_engine, people)
    login(client, "finance")
    page = client.get("/ledger", params={"campaign": campaign_id, "period": "2027-Q1"})
    assert page.status_code == 200
    assert "¥8.00" in page.text  # 8 letters at ¥1.00, fees waived
    assert "¥10,000.00" in page.text  # the 2027 budget
    assert '<svg viewBox="0 0 640 250"' in page.text and 'class="chart-spent"' in page.text
    assert "style=" not in page.text  # the CSP allows no inline styles
    spent = re.search(r'id="statement-spent">([^<]+)<', page.text)
    assert spent and spent.group(1) == "¥8.00"

    csv_answer = client.get("/ledger/statement.csv", params={"campaign": campaign_id, "period": "2027-Q1"})
    assert csv_answer.status_code == 200
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_answer.headers["content-disposition"]
    with Session(committed_engine) as session:
        st = ledger.statement(session=session, campaign_id=campaign_id, period="2027-Q1")
    write_statement_csv(st, tmp_path / "cli.csv")
    rows = list(csv.reader(io.StringIO(csv_answer.content.decode("utf-8-sig"))))
    cli_rows = list(csv.reader(io.StringIO((tmp_path / "cli.csv").read_text(encoding="utf-8-sig"))))
    # The same document as the CLI's, but for the moment it was made.
    assert [r for r in rows if r[0] != "generated_at"] == [r for r in cli_rows if r[0] != "generated_at"]
    total = next(r for r in rows if r[0] == "total")
    assert total[-2] == "8.00"

    pdf = client.get("/ledger/statement.pdf", params={"campaign": campaign_id, "period": "2027-Q1"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_finance_sets_a_budget_version_with_a_reason(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    campaign_id = _done_run(committed_engine, people, women=3)
    login(client, "finance")
    page = client.get("/ledger", params={"campaign": campaign_id})
    token = csrf_of(page.text)
    no_reason = client.post(
        "/ledger/budgets",
        data={"csrf_token": token, "campaign": campaign_id, "budget_period": "2027-Q2", "amount": "500"},
    )
    assert no_reason.status_code == 422 and "原因" in no_reason.text
    assert 'value="500"' in no_reason.text  # what was typed is kept
    bad = client.post(
        "/ledger/budgets",
        data={
            "csrf_token": token,
            "campaign": campaign_id,
            "budget_period": "2027-Q2",
            "amount": "五百",
            "reason": "追加",
        },
    )
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    below = client.post(
        "/ledger/budgets",
        data={
            "csrf_token": token,
            "campaign": campaign_id,
            "budget_period": "2027",
            "amount": "1",
            "reason": "x",
        },
    )
    assert below.status_code == 422 and "¥3.00" in below.text  # below what is committed
    done = client.post(
        "/ledger/budgets",
        data={
            "csrf_token": token,
            "campaign": campaign_id,
            "budget_period": "2027年第二季度",
            "amount": "6,000",
            "reason": "第二季度追加",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert "2027-Q2" in page.text and "¥6,000.00" in page.text and "第二季度追加" in page.text
    assert "新的预算版本已记录" in page.text


def test_adjustments_need_a_reason(client: TestClient, people: People, committed_engine: Engine) -> None:
    campaign_id = _done_run(committed_engine, people, women=3)
    login(client, "finance")
    token = csrf_of(client.get("/ledger").text)
    refused = client.post(
        "/ledger/adjustments",
        data={"csrf_token": token, "campaign": campaign_id, "amount": "-2", "adjust_period": "2027-Q1"},
    )
    assert refused.status_code == 422 and "原因" in refused.text
    booked = client.post(
        "/ledger/adjustments",
        data={
            "csrf_token": token,
            "campaign": campaign_id,
            "amount": "-2",
            "adjust_period": "2027-Q1",
            "reason": "邮局少收两件",
            "period": "2027-Q1",
        },
        follow_redirects=False,
    )
    assert booked.status_code == 303
    page = client.get(booked.headers["location"])
    assert "邮局少收两件" in page.text and "-¥2.00" in page.text
    assert re.search(r'id="statement-spent">¥1\.00<', page.text)  # 3 letters less the credit
    with Session(committed_engine) as session:
        kinds = session.scalars(select(LedgerEntry.kind).where(LedgerEntry.kind == "adjust")).all()
        assert kinds == ["adjust"]


def test_finance_adds_a_rate_card_version_in_the_fee_grammar(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    login(client, "finance")
    page = client.get("/ledger/rates")
    assert page.status_code == 200 and "还没有设定任何费率表" in page.text
    token = csrf_of(page.text)
    form = {
        "csrf_token": token,
        "code": "qjr-2027",
        "effective_from": "2027-01-01",
        "letter": "1",
        "sms_part": "0.05",
        "fees": "名址使用费=0.10:waived\n制版费=200:fixed\n",
        "refund_undeliverable": "yes",
    }
    bad = client.post("/ledger/rates", data={**form, "fees": "名址使用费=0.10\n折叠费=0.05:free"})
    assert bad.status_code == 422 and "第 2 行" in bad.text and "free" in bad.text
    assert "折叠费=0.05:free" in bad.text  # kept for correcting
    done = client.post("/ledger/rates", data=form, follow_redirects=False)
    assert done.status_code == 303
    again = client.post("/ledger/rates", data={**form, "letter": "1.20"}, follow_redirects=False)
    assert again.status_code == 303
    page = client.get("/ledger/rates")
    assert "v1" in page.text and "v2" in page.text and "¥1.20" in page.text
    assert "每件 ¥0.10" in page.text and "每次运行 ¥200.00" in page.text and "免收" in page.text
    assert "2027年1月1日" in page.text
    with Session(committed_engine) as session:
        versions = session.scalars(select(RateCard.version).where(RateCard.code == "qjr-2027")).all()
        assert sorted(versions) == [1, 2]


def test_planners_read_but_do_not_change_and_print_shops_see_nothing(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    campaign_id = _done_run(committed_engine, people, women=3)
    login(client, "planner")
    page = client.get("/ledger", params={"campaign": campaign_id})
    assert page.status_code == 200 and "¥3.00" in page.text
    assert 'action="/ledger/budgets"' not in page.text and 'action="/ledger/adjustments"' not in page.text
    token = csrf_of(page.text)
    refused = client.post(
        "/ledger/budgets",
        data={
            "csrf_token": token,
            "campaign": campaign_id,
            "budget_period": "2027",
            "amount": "1",
            "reason": "x",
        },
    )
    assert refused.status_code == 403
    assert client.post("/ledger/rates", data={"csrf_token": token, "code": "x"}).status_code == 403
    assert (
        client.post(
            "/ledger/adjustments",
            data={"csrf_token": token, "campaign": campaign_id, "amount": "1", "reason": "x"},
        ).status_code
        == 403
    )
    client.cookies.clear()
    login(client, "shop")
    for path in ("/ledger", "/ledger/rates", f"/ledger/statement.csv?campaign={campaign_id}"):
        assert client.get(path).status_code == 403, path
