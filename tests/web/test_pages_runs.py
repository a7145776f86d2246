"""运行 pages: the list with what can be started and what the schedule starts, starting an approved period
(and the refusal of an unapproved one), the progress fragment, failed pieces and their retry, the batch list
with the print shop's acknowledgements and returns, cancelling with a confirmation; refusals by role."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.runs import executor, printshop
from outreach.runs import service as runs
from outreach.runs.models import Batch, Piece, Run
from outreach.storage import get_storage
from tests.runs.world import committed_world
from tests.web.conftest import People, csrf_of, login
from workers.local import run_locally


def _start(engine: Engine, name: str = "俏佳人") -> int:
    with Session(engine) as session, session.begin():
        campaign = campaigns.get_by_name(session=session, name=name)
        return runs.start(session=session, campaign=campaign, period="2027-Q1").id


def test_a_planner_starts_an_approved_period_and_follows_it(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    world = committed_world(committed_engine, print_shop=people.shop.name, women=12, batch_size=5)
    login(client, "planner")
    page = client.get("/runs")
    assert page.status_code == 200
    assert "开始运行" in page.text and f"{world.campaign_id}|2027-Q1" in page.text
    started = client.post(
        "/runs/start",
        data={"csrf_token": csrf_of(page.text), "choice": f"{world.campaign_id}|2027-Q1"},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    # The web process handed the run to a detached local process; wait for it like `run start` does.
    assert executor.wait_for(run_id, timeout=60) == "done"
    detail = client.get(f"/runs/{run_id}")
    assert detail.status_code == 200
    assert "已完成" in detail.text or "完成" in detail.text
    assert "12 / 12" in detail.text and "3 / 3" in detail.text  # pieces and batches done
    assert "hx-trigger" not in detail.text.split('id="run-progress"')[1].split(">")[0]  # no polling once done
    fragment = client.get(f"/runs/{run_id}/progress")
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith("<section")
    assert "<html" not in fragment.text
    # Started twice: the existing run, not a second one.
    again = client.post(
        "/runs/start",
        data={"csrf_token": csrf_of(page.text), "choice": f"{world.campaign_id}|2027-Q1"},
        follow_redirects=False,
    )
    assert again.headers["location"] == f"/runs/{run_id}"
    with Session(committed_engine) as session:
        assert len(session.scalars(select(Run)).all()) == 1


def test_an_active_run_polls_its_fragment_every_two_seconds(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    committed_world(committed_engine, print_shop=people.shop.name, women=12, batch_size=5)
    run_id = _start(committed_engine)
    login(client, "approver")  # every union role reads runs
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert f'hx-get="/runs/{run_id}/progress" hx-trigger="every 2s"' in page.text
    assert "0 / 12" in page.text and "/static/htmx.min.js" in page.text
    assert "继续运行" not in page.text and "取消运行" not in page.text  # approvers neither resume nor cancel


def test_an_unapproved_period_is_refused_with_its_reason(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    world = committed_world(committed_engine, print_shop=people.shop.name, women=4, period=None)
    login(client, "planner")
    page = client.get("/runs")
    assert "没有等待开始的已批准期次" in page.text or f"{world.campaign_id}|" not in page.text
    refused = client.post(
        "/runs/start",
        data={"csrf_token": csrf_of(page.text), "choice": f"{world.campaign_id}|2027-Q1"},
    )
    assert refused.status_code == 409
    assert "批准" in refused.text or "not approved" in refused.text  # campaigns' wording
    with Session(committed_engine) as session:
        assert session.scalars(select(Run)).all() == []


def test_failed_pieces_show_their_reason_and_are_tried_again(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    committed_world(committed_engine, print_shop=people.shop.name, women=6, batch_size=10)
    run_id = _start(committed_engine)
    with Session(committed_engine) as session, session.begin():
        session.execute(
            update(Piece)
            .where(Piece.run_id == run_id, Piece.seq <= 2)
            .values(state="failed", error="字库缺少“𠮷”")
        )
        session.execute(update(Run).where(Run.id == run_id).values(state="stalled", note="磁盘已满"))
    login(client, "planner")
    page = client.get(f"/runs/{run_id}")
    assert "磁盘已满" in page.text and "继续运行" in page.text  # the stall's reason and what to do
    assert page.text.count("字库缺少“𠮷”") == 2 and f"R{run_id:06d}-0000001" in page.text
    retried = client.post(
        f"/runs/{run_id}/resume",
        data={"csrf_token": csrf_of(page.text), "failed": "yes"},
        follow_redirects=False,
    )
    assert retried.status_code == 303 and retried.headers["location"].endswith("done=retried")
    assert executor.wait_for(run_id, timeout=60) == "done"
    with Session(committed_engine) as session:
        states = set(session.scalars(select(Piece.state).where(Piece.run_id == run_id)))
        assert states == {"rendered"}


def test_retry_failed_refuses_a_finished_run(committed_engine: Engine) -> None:
    committed_world(committed_engine, women=3, batch_size=10)
    run_id = _start(committed_engine)
    run_locally(run_id)
    with Session(committed_engine) as session:
        try:
            runs.retry_failed(session=session, run_id=run_id)
        except Exception as exc:  # StateError, in the catalogue's words
            assert "已完成" in str(exc) or "完成" in str(exc)
        else:
            raise AssertionError("a finished run's pieces were put back")


def test_the_batch_list_shows_the_print_shops_acknowledgements(
    client: TestClient, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    committed_world(committed_engine, print_shop=people.shop.name, women=12, batch_size=5)
    run_id = _start(committed_engine)
    run_locally(run_id)
    with Session(committed_engine) as session, session.begin():
        first = session.scalars(select(Batch).where(Batch.run_id == run_id, Batch.seq == 1)).one()
        printshop.download(session=session, storage=get_storage(), batch_id=first.id, dest=tmp_path)
        printshop.report(session=session, batch_id=first.id, state="printed")
        printshop.record_returns(session=session, numbers=[f"R{run_id:06d}-0000002"])
        assert printshop.returned_by_batch(session=session, run_id=run_id) == {1: 1}
    login(client, "planner")
    page = client.get(f"/runs/{run_id}")
    rows = re.findall(r"<tr>\s*<td>第 \d+ 批</td>.*?</tr>", page.text, flags=re.S)
    assert len(rows) == 3, page.text
    assert "已印制" in rows[0] and "年" in rows[0] and rows[0].rstrip("</tr>").strip().endswith(">1</td>")


def test_cancel_asks_first_then_cancels(client: TestClient, people: People, committed_engine: Engine) -> None:
    committed_world(committed_engine, print_shop=people.shop.name, women=6, batch_size=10)
    run_id = _start(committed_engine)
    login(client, "planner")
    page = client.get(f"/runs/{run_id}")
    assert f'href="/runs/{run_id}/cancel"' in page.text
    confirm = client.get(f"/runs/{run_id}/cancel")
    assert confirm.status_code == 200 and "不能撤销" in confirm.text
    unconfirmed = client.post(
        f"/runs/{run_id}/cancel", data={"csrf_token": csrf_of(confirm.text)}, follow_redirects=False
    )
    assert unconfirmed.headers["location"] == f"/runs/{run_id}/cancel"
    with Session(committed_engine) as session:
        assert runs.get(session=session, run_id=run_id).state == "rendering"
    done = client.post(
        f"/runs/{run_id}/cancel",
        data={"csrf_token": csrf_of(confirm.text), "confirm": "yes"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    with Session(committed_engine) as session:
        assert runs.get(session=session, run_id=run_id).state == "cancelled"


def test_roles_that_may_not(client: TestClient, people: People, committed_engine: Engine) -> None:
    committed_world(committed_engine, print_shop=people.shop.name, women=3, batch_size=10)
    run_id = _start(committed_engine)
    login(client, "shop")
    assert client.get("/runs").status_code == 403
    assert client.get(f"/runs/{run_id}").status_code == 403
    assert client.get(f"/runs/{run_id}/progress").status_code == 403
    client.cookies.clear()
    login(client, "finance")
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    refused = client.post(f"/runs/{run_id}/cancel", data={"csrf_token": csrf_of(page.text), "confirm": "yes"})
    assert refused.status_code == 403
    refused = client.post(f"/runs/{run_id}/resume", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403
    no_csrf = client.post("/runs/start", data={"choice": "1|2027-Q1"})
    assert no_csrf.status_code == 403


def test_a_finished_run_is_not_cancelled(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    committed_world(committed_engine, print_shop=people.shop.name, women=3, batch_size=10)
    run_id = _start(committed_engine)
    run_locally(run_id)
    login(client, "planner")
    page = client.get(f"/runs/{run_id}")
    assert f'href="/runs/{run_id}/cancel"' not in page.text  # no cancel offered for a done run
    refused = client.post(f"/runs/{run_id}/cancel", data={"csrf_token": csrf_of(page.text), "confirm": "yes"})
    assert refused.status_code == 409 and "已结束的运行不能取消" in refused.text
    with Session(committed_engine) as session:
        assert runs.get(session=session, run_id=run_id).state == "done"
