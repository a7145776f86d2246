"""The campaign, run and batch commands as a planner types them."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audiences import service as audiences
from outreach.cli import app
from outreach.runs.models import Batch
from tests.audiences.factories import make_unit, make_worker

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_plan_approve_run_and_report(committed_engine: Engine) -> None:
    with Session(committed_engine) as session, session.begin():
        unit = make_unit(session, name="尤溪县纺织厂")
        for i in range(5):
            make_worker(session, unit, name=f"林秀英{i}", gender="F")
        audiences.save(session=session, name="女职工", expression="gender = 'F'")
    invoke(
        "ledger",
        "rates",
        "set",
        "qjr",
        "--from",
        "2020-01-01",
        "--letter",
        "1.00",
        "--sms-part",
        "0.05",
        "--fee",
        "名址使用费=0.10:waived",
    )
    invoke("printshop", "add", "尤溪县邮政商函印制中心")
    out = invoke(
        "campaign",
        "create",
        "俏佳人",
        "--audience",
        "女职工",
        "--kit",
        "qiaojiaren",
        "--rate-card",
        "qjr",
        "--print-shop",
        "尤溪县邮政商函印制中心",
    )
    assert "已创建（草稿" in out
    invoke("ledger", "budget", "set", "俏佳人", "100", "--period", "2027")
    out = invoke("campaign", "approve", "俏佳人", "--period", "2027-Q1")
    assert "可送达件数" in out and "¥5.00" in out and "已批准用于 2027-Q1" in out
    invoke("run", "start", "俏佳人", "--period", "2027-Q1")
    shown = json.loads(invoke("campaign", "show", "俏佳人", "--json"))
    assert shown["runs"][0]["state"] == "done" and shown["state"] == "active"
    run_id = str(shown["runs"][0]["id"])
    status = json.loads(invoke("run", "status", run_id, "--json"))
    assert status["state"] == "done" and status["rendered"] == 5 and status["batches"] == 1
    assert f"run-{int(run_id):06d}/batch-0001" in invoke("batch", "list", run_id)
    with Session(committed_engine) as session:
        (batch_id,) = session.scalars(select(Batch.id).where(Batch.run_id == int(run_id))).all()
    assert "已交寄" in invoke("batch", "report", str(batch_id), "已寄出")
    assert "无需操作" in invoke("run", "resume", run_id)
    out = invoke(
        "ledger", "adjust", "俏佳人", "--amount", "-1.50", "--reason", "少印一件", "--period", "2027-Q1"
    )
    assert "-¥1.50" in out and "2027-Q1" in out


def test_errors_are_one_clear_line_not_a_traceback(engine: Engine) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "outreach", "run", "start", "没有这个活动"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "没有活动 '没有这个活动'" in proc.stderr and "Traceback" not in proc.stderr


def test_run_start_refuses_an_unapproved_period_and_names_an_existing_run(committed_engine: Engine) -> None:
    from outreach.campaigns import service as campaigns
    from outreach.errors import StateError
    from outreach.runs.models import Run
    from tests.runs.world import committed_world

    world = committed_world(committed_engine, women=3, batch_size=10, period=None)
    # No --period and nothing approved: refused, and no waiting run is left behind.
    result = runner.invoke(app, ["run", "start", world.campaign])
    assert isinstance(result.exception, StateError) and "没有已审批的季度" in str(result.exception)
    result = runner.invoke(app, ["run", "start", world.campaign, "--period", "2027-Q1"])
    assert isinstance(result.exception, StateError)
    with Session(committed_engine) as session:
        assert session.scalars(select(Run)).all() == []
    with Session(committed_engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=world.campaign)
        campaigns.approve(session=session, campaign=c, period="2027-Q1")
    # Without --period: the approved period.
    out = invoke("run", "start", world.campaign)
    assert "已冻结 3 件并预留预算" in out
    again = invoke("run", "start", world.campaign, "--period", "2027-Q1")
    assert "已存在" in again and "已完成" in again and "已冻结" not in again
    with Session(committed_engine) as session:
        assert [r.period for r in session.scalars(select(Run))] == ["2027-Q1"]
