"""Audience service: counts and breakdowns, previews, addresses, saved audiences, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audiences.models import Audience, Suppression, Worker
from audiences.privacy import mask_mobile
from audiences.service import BreakdownRow, count, get_by_name, preview, recipient_select, save
from outreach import db
from outreach.cli import app
from outreach.errors import InputError, NotFound, QueryError
from tests.audiences.factories import TODAY, make_unit, make_worker, small_registry


@pytest.fixture
def registry(session: Session) -> dict[str, Worker]:
    return small_registry(session)


def as_dict(rows: tuple[BreakdownRow, ...]) -> dict[object, int]:
    return {r.value: r.count for r in rows}


def test_count_with_breakdown_sums_to_the_total(session: Session, registry: dict[str, Worker]) -> None:
    result = count(session=session, expression="gender = 'F'", by="unit.township", today=TODAY)
    assert result.total == 7
    assert as_dict(result.rows) == {"城关镇": 6, "西城镇": 1}
    assert result.rows[0] == BreakdownRow("城关镇", 6)  # largest group first
    assert round(result.rows[0].percent(result.total), 1) == 85.7
    plain = count(session=session, expression="gender = 'F'", today=TODAY)
    assert (plain.total, plain.rows, plain.by) == (7, (), None)


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("unit.kind", {"企业": 3, "机关": 1, "学校": 1, "其他": 1, "事业单位": 1}),
        ("category", {"企业职工": 2, None: 2, "公务员": 1, "教师": 1, "白领": 1}),
        ("hardship", {True: 2, False: 5}),
        ("age", {40: 1, 60: 1, 61: 1, 18: 1, 17: 1, 35: 1, None: 1}),
        ("UNIT.TOWNSHIP", {"城关镇": 6, "西城镇": 1}),
    ],
)
def test_breakdown_by_any_catalogue_field(
    session: Session, registry: dict[str, Worker], by: str, expected: Any
) -> None:
    result = count(session=session, expression="gender = 'F'", by=by, today=TODAY)
    assert as_dict(result.rows) == expected
    assert result.total == 7


def test_breakdown_on_a_channel_counts_only_reachable(session: Session, registry: dict[str, Worker]) -> None:
    # SMS: a mobile and consent -> w1, w3 among the women.
    result = count(session=session, expression="gender = 'F'", channel="sms", by="category", today=TODAY)
    assert as_dict(result.rows) == {"企业职工": 1, "教师": 1}
    # Mail: w7's unit (个体商户联合会) has no address.
    assert count(session=session, expression="gender = 'F'", channel="mail", today=TODAY).total == 6


def test_breakdown_by_unknown_or_private_field_is_refused(
    session: Session, registry: dict[str, Worker]
) -> None:
    with pytest.raises(QueryError, match=r"did you mean unit\.township"):
        count(session=session, expression="true", by="township", today=TODAY)
    with pytest.raises(QueryError, match="cannot break down by mobile"):
        count(session=session, expression="true", by="mobile", today=TODAY)


def test_count_refuses_a_bad_expression_with_its_position(
    session: Session, registry: dict[str, Worker]
) -> None:
    with pytest.raises(QueryError) as info:
        count(session=session, expression="gender = 'F' and age = '老'", today=TODAY)
    assert info.value.position == 23


def test_letters_go_to_the_home_address_only_when_address_and_postcode_are_on_file(session: Session) -> None:
    unit = make_unit(session, name="纺织厂", address="城关镇工业路8号", postcode="365100")
    home = make_worker(session, unit, name="home", home_address="城关镇南街5号", home_postcode="365199")
    half = make_worker(session, unit, name="half", home_address="城关镇北街3号")
    none = make_worker(session, unit, name="none")
    rows = {r.worker_id: r for r in session.execute(recipient_select(expression="true", channel="mail"))}
    assert (rows[home.id].address, rows[home.id].postcode) == ("城关镇南街5号", "365199")
    assert (rows[half.id].address, rows[half.id].postcode) == ("城关镇工业路8号", "365100")
    assert (rows[none.id].address, rows[none.id].postcode) == ("城关镇工业路8号", "365100")
    assert rows[home.id].unit_name == "纺织厂" and rows[home.id].township == "城关镇"


def test_recipient_select_has_the_columns_the_runs_build_on(
    session: Session, registry: dict[str, Worker]
) -> None:
    stmt = recipient_select(expression="hardship", channel="sms", today=TODAY)
    assert list(stmt.selected_columns.keys()) == [
        "worker_id",
        "name",
        "gender",
        "unit_id",
        "unit_name",
        "township",
        "address",
        "postcode",
        "mobile",
    ]
    rows = session.execute(stmt.order_by("worker_id")).all()
    assert [r.mobile for r in rows] == ["13800000001", "13800000006", "13800000009"]


def test_preview_gives_breakdowns_and_a_masked_sample(session: Session, registry: dict[str, Worker]) -> None:
    result = preview(session=session, expression="hardship", channel="sms", sample=2, today=TODAY)
    assert result.total == 3
    assert set(result.breakdowns) == {"unit.township", "unit.kind", "category"}
    assert as_dict(result.breakdowns["unit.kind"]) == {"企业": 3}
    assert as_dict(result.breakdowns["category"]) == {"企业职工": 2, "公务员": 1}
    assert [s.worker_id for s in result.sample] == [registry["w1"].id, registry["w6"].id]
    assert [s.mobile for s in result.sample] == ["138****0001", "138****0006"]
    with pytest.raises(InputError):
        preview(session=session, expression="hardship", sample=-1)


def test_mask_mobile() -> None:
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_mobile(None) == ""
    assert mask_mobile("") == ""
    assert mask_mobile("12345") == "***45"


def test_save_validates_and_replaces(session: Session) -> None:
    saved = save(session=session, name=" 俏佳人 ", expression="gender = 'F'")
    assert get_by_name(session=session, name="俏佳人").id == saved.id
    again = save(session=session, name="俏佳人", expression="gender = 'F' and unit.kind = '企业'")
    assert again.id == saved.id
    assert get_by_name(session=session, name="俏佳人").expression == "gender = 'F' and unit.kind = '企业'"
    with pytest.raises(QueryError):
        save(session=session, name="坏的", expression="gender = 'X'")
    with pytest.raises(InputError):
        save(session=session, name="  ", expression="true")
    with pytest.raises(NotFound):
        get_by_name(session=session, name="坏的")
    assert session.scalar(select(func.count()).select_from(Audience)) == 1


# --- the CLI, against committed data -----------------------------------------------------------------


@pytest.fixture
def committed(committed_engine: Engine) -> Iterator[dict[str, int]]:
    with Session(committed_engine) as session:
        workers = small_registry(session)
        ids = {key: w.id for key, w in workers.items()}
        session.commit()
    yield ids
    # The CLI opens the settings' engine; close its pooled connections before the tables are emptied.
    db.get_engine().dispose()


def test_cli_count_json(committed: dict[str, int]) -> None:
    result = CliRunner().invoke(
        app, ["audience", "count", "gender = 'F'", "--by", "unit.kind", "--channel", "mail", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["total"] == 6
    assert {r["value"]: r["count"] for r in payload["breakdown"]} == {
        "企业": 3,
        "机关": 1,
        "学校": 1,
        "事业单位": 1,
    }
    assert payload["breakdown"][0] == {"value": "企业", "count": 3, "percent": 50.0}


def test_cli_count_table_preview_save_list_show(committed: dict[str, int]) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["audience", "count", "hardship and consent.sms"])
    assert out.exit_code == 0, out.output
    assert "3 workers" in out.output and "城关镇" in out.output and "66.7%" in out.output
    out = runner.invoke(app, ["audience", "preview", "hardship and consent.sms", "--channel", "sms"])
    assert out.exit_code == 0, out.output
    assert "138****0001" in out.output and "13800000001" not in out.output
    out = runner.invoke(app, ["audience", "save", "困难职工短信", "hardship and consent.sms"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["audience", "list"])
    assert "困难职工短信" in out.output
    out = runner.invoke(app, ["audience", "show", "困难职工短信"])
    assert out.exit_code == 0 and "workers now: 3" in out.output


def test_cli_suppress_and_reply(committed: dict[str, int], committed_engine: Engine) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["audience", "reply", "13800000001", "退订"])
    assert out.exit_code == 0, out.output
    assert "138****0001" in out.output
    out = runner.invoke(app, ["audience", "reply", "13800000006", "谢谢"])
    assert "nothing recorded" in out.output
    out = runner.invoke(
        app, ["audience", "suppress", "--worker-id", str(committed["w9"]), "--reason", "returned_mail"]
    )
    assert out.exit_code == 0, out.output
    with Session(committed_engine) as session:
        rows = session.execute(select(Suppression.channel, Suppression.reason, Suppression.mobile)).all()
    assert sorted(rows, key=str) == sorted(
        [("all", "sms_reply", "13800000001"), ("letter", "returned_mail", None)], key=str
    )
    out = runner.invoke(app, ["audience", "count", "hardship and consent.sms", "--channel", "sms", "--json"])
    assert json.loads(out.output)["total"] == 2


def test_cli_query_error_prints_a_caret_and_exits_1(engine: Engine) -> None:
    env = {**os.environ}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "outreach"), "audience", "count", "unit.kind = '工厂'"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "allowed: 企业, 事业单位, 机关, 学校, 其他" in proc.stderr
    assert "unit.kind = '工厂'" in proc.stderr
    assert proc.stderr.rstrip().endswith("^")
