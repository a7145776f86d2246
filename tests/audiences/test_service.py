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
from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audiences.models import Audience, Suppression, Worker
from audiences.privacy import mask_mobile
from audiences.schemas import AudienceCount, AudienceIn, BreakdownRow, SavedAudience, UnmatchedValue
from audiences.service import (
    MAX_CHECKED_VALUES,
    count,
    field_catalogue,
    get_by_name,
    list_audiences,
    preview,
    recipient_select,
    save,
    unmatched_values,
)
from outreach import db
from outreach.cli import app
from outreach.errors import InputError, NotFound, QueryError
from outreach.i18n import use_language
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
    assert result.rows[0] == BreakdownRow(value="城关镇", count=6)  # largest group first
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
    assert count(session=session, expression="gender = 'F'", channel="letter", today=TODAY).total == 6


def test_breakdown_by_unknown_or_private_field_is_refused(
    session: Session, registry: dict[str, Worker]
) -> None:
    with pytest.raises(QueryError, match=r"您是不是想写 unit\.township"):
        count(session=session, expression="true", by="township", today=TODAY)
    with pytest.raises(QueryError, match="不能按 mobile 分组"):
        count(session=session, expression="true", by="mobile", today=TODAY)
    with use_language("en"), pytest.raises(QueryError, match="cannot break down by 手机号码"):
        count(session=session, expression="true", by="手机号码", today=TODAY)


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
    rows = {r.worker_id: r for r in session.execute(recipient_select(expression="true", channel="letter"))}
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
    assert "共 3 名职工" in out.output and "城关镇" in out.output and "66.7%" in out.output
    out = runner.invoke(app, ["audience", "preview", "hardship and consent.sms", "--channel", "sms"])
    assert out.exit_code == 0, out.output
    assert "138****0001" in out.output and "13800000001" not in out.output
    out = runner.invoke(app, ["audience", "save", "困难职工短信", "hardship and consent.sms"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["audience", "list"])
    assert "困难职工短信" in out.output
    out = runner.invoke(app, ["audience", "show", "困难职工短信"])
    assert out.exit_code == 0 and "当前人数：3" in out.output


def test_cli_suppress_and_reply(committed: dict[str, int], committed_engine: Engine) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["audience", "reply", "13800000001", "退订"])
    assert out.exit_code == 0, out.output
    assert "138****0001" in out.output
    out = runner.invoke(app, ["audience", "reply", "13800000006", "谢谢"])
    assert "不是退订回复，未作登记" in out.output
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
    assert "unit.kind 没有 '工厂' 这个值；可用的值：企业, 事业单位, 机关, 学校, 其他" in proc.stderr
    assert "（第 13 个字符处）" in proc.stderr
    assert "unit.kind = '工厂'" in proc.stderr
    assert proc.stderr.rstrip().endswith("^")


# --- values that match no one ------------------------------------------------------------------------


def test_an_equality_that_matches_no_one_names_the_closest_values(
    session: Session, registry: dict[str, Worker]
) -> None:
    result = count(session=session, expression="unit.township = '城关'", today=TODAY)
    assert result.total == 0
    assert result.warnings == (
        UnmatchedValue(
            field="unit.township", written="unit.township", value="城关", position=16, suggestions=("城关镇",)
        ),
    )
    assert result.warnings[0].message == "名址库中没有 unit.township 为 '城关' 的记录；最接近的值：城关镇"
    with use_language("en"):
        assert result.warnings[0].message == (
            "no one in the registry has unit.township = '城关'; closest values: 城关镇"
        )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Only the missing value of a list is named; the field as the planner wrote it.
        ("单位.乡镇 in ('城关镇', '西城')", [("单位.乡镇", "西城", ("西城镇",))]),
        ("乡镇 = '城关' or 乡镇 = '西城镇'", [("乡镇", "城关", ("城关镇",))]),
        ("category = '公务元'", [("category", "公务元", ("公务员",))]),  # a close spelling
        ("职工类别 != '公务元'", [("职工类别", "公务元", ("公务员",))]),
        ("unit.name = '纺织厂'", [("unit.name", "纺织厂", ("城关纺织厂",))]),
        ("unit.industry = '航天'", [("unit.industry", "航天", ())]),  # nothing near: no hint
        ("not (unit.township = '东城镇') and hardship", [("unit.township", "东城镇", ("西城镇", "城关镇"))]),
    ],
)
def test_unmatched_values_in_lists_negations_and_chinese_names(
    session: Session, registry: dict[str, Worker], expression: str, expected: list[Any]
) -> None:
    warnings = unmatched_values(session=session, expression=expression)
    assert [(w.written, w.value, w.suggestions) for w in warnings] == expected


@pytest.mark.parametrize(
    "expression",
    [
        "gender = 'F' and unit.township = '城关镇'",
        "unit.kind = '学校'",  # a closed set, checked when parsed
        "age > 18 and birth_year = 1200",  # numbers are not looked up
        "unit.name contains '纺'",
        "category in ('公務員', '教师')",  # normalised before the lookup: 公務員 is stored 公务员
        "mobile is null and hardship",
    ],
)
def test_values_that_exist_or_are_not_text_equalities_give_no_warning(
    session: Session, registry: dict[str, Worker], expression: str
) -> None:
    assert unmatched_values(session=session, expression=expression) == ()


def test_the_check_is_bounded_and_can_be_left_out(session: Session, registry: dict[str, Worker]) -> None:
    many = ", ".join(f"'无此乡{i}'" for i in range(MAX_CHECKED_VALUES + 20))
    warnings = unmatched_values(session=session, expression=f"unit.township in ({many})")
    assert len(warnings) == MAX_CHECKED_VALUES
    plain = count(session=session, expression="unit.township = '城关'", today=TODAY, check_values=False)
    assert plain.warnings == ()


def test_preview_carries_the_warnings_too(session: Session, registry: dict[str, Worker]) -> None:
    result = preview(session=session, expression="hardship or 乡镇 = '西城'", today=TODAY)
    assert [(w.value, w.suggestions) for w in result.warnings] == [("西城", ("西城镇",))]


# --- the boundary schemas --------------------------------------------------------------------------


def test_results_are_pydantic_schemas_for_the_web_api(session: Session, registry: dict[str, Worker]) -> None:
    result = count(session=session, expression="乡镇 = '城关'", channel="letter", by="category", today=TODAY)
    dumped = AudienceCount.model_validate_json(result.model_dump_json())
    assert dumped == result
    assert set(AudienceCount.model_json_schema()["properties"]) == {
        "expression",
        "channel",
        "by",
        "total",
        "rows",
        "warnings",
    }
    # The old channel word is still taken and answered with the one word.
    old_word: Any = "mail"
    assert count(session=session, expression="true", channel=old_word, today=TODAY).channel == "letter"
    saved = save(session=session, name="女职工", expression="性别 = '女'")
    assert isinstance(saved, SavedAudience) and saved.id > 0
    assert get_by_name(session=session, name="女职工") == saved
    assert [a.name for a in list_audiences(session=session)] == ["女职工"]
    assert SavedAudience.model_validate_json(saved.model_dump_json()) == saved
    with pytest.raises(ValidationError):
        AudienceIn(name="", expression="true")


def test_the_field_catalogue_gives_chinese_names_and_translated_meanings() -> None:
    fields = {f.name: f for f in field_catalogue()}
    assert fields["unit.township"].chinese_names == ("乡镇", "单位.乡镇")
    assert (fields["unit.township"].type, fields["unit.township"].description) == ("文本", "单位所在乡镇")
    assert fields["hardship"].chinese_names == ("困难职工",) and fields["hardship"].type == "是/否"
    with use_language("en"):
        assert {f.name: f for f in field_catalogue()}["age"].description == "this year minus birth year"


# --- the CLI in Chinese, data escaped ----------------------------------------------------------------


def test_cli_count_warns_of_a_value_that_matches_no_one(committed: dict[str, int]) -> None:
    out = CliRunner().invoke(app, ["audience", "count", "单位.乡镇 = '城关'"])
    assert out.exit_code == 0, out.output
    assert "共 0 名职工" in out.stdout
    assert "注意: 名址库中没有 单位.乡镇 为 '城关' 的记录；最接近的值：城关镇" in out.stderr
    out = CliRunner().invoke(app, ["audience", "count", "单位.乡镇 = '城关'", "--json"])
    payload = json.loads(out.stdout)
    assert payload["warnings"] == [
        {
            "field": "unit.township",
            "value": "城关",
            "suggestions": ["城关镇"],
            "message": "名址库中没有 单位.乡镇 为 '城关' 的记录；最接近的值：城关镇",
        }
    ]


def test_cli_speaks_chinese_by_default_and_english_when_asked(committed: dict[str, int]) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["audience", "count", "性别 = '女'", "--channel", "sms", "--by", "单位类型"])
    assert out.exit_code == 0, out.output
    assert "可通过短信联系的职工共 2 名" in out.stdout
    assert "单位类型" in out.stdout and "人数" in out.stdout
    out = runner.invoke(app, ["audience", "count", "--help"])
    assert "统计表达式选中的职工人数" in out.stdout
    out = runner.invoke(app, ["audience", "fields"])
    assert out.exit_code == 0, out.output
    assert "单位.乡镇" in out.stdout and "单位所在乡镇" in out.stdout and "是/否" in out.stdout
    with use_language("en"):
        out = runner.invoke(app, ["audience", "count", "gender = 'F'", "--channel", "sms"])
        assert "2 workers reachable by text messages" in out.stdout
        out = runner.invoke(app, ["audience", "count", "gender = 'X'"])
        assert out.exit_code == 1 and "gender has no value 'X'; allowed: F, M" in str(out.exception)


def test_cli_suppress_uses_the_service_default_and_lists_in_chinese(
    committed: dict[str, int], committed_engine: Engine
) -> None:
    runner = CliRunner()
    w9 = committed["w9"]
    out = runner.invoke(app, ["audience", "suppress", "--worker-id", str(w9), "--reason", "returned_mail"])
    assert out.exit_code == 0, out.output
    assert f"已在信件屏蔽 职工 {w9}（信件退回）" in out.stdout
    out = runner.invoke(app, ["audience", "suppress", "--mobile", "13800000002", "--note", "[/]电话要求"])
    assert out.exit_code == 0, out.output
    assert "已在所有渠道屏蔽 138****0002（本人退订）" in out.stdout
    with Session(committed_engine) as session:
        assert sorted(session.execute(select(Suppression.channel, Suppression.reason)).all()) == [
            ("all", "opt_out"),
            ("letter", "returned_mail"),
        ]
    # 'mail', the old word for letter, is still taken and stored as letter.
    out = runner.invoke(
        app, ["audience", "suppress", "--worker-id", str(committed["w1"]), "--channel", "mail"]
    )
    assert out.exit_code == 0 and "已在信件屏蔽" in out.stdout
    out = runner.invoke(app, ["audience", "suppressions"])
    assert out.exit_code == 0, out.output
    for text in ("信件退回", "本人退订", "所有渠道", "138****0002", "[/]电话要求"):
        assert text in out.stdout
    assert "13800000002" not in out.stdout


def test_cli_prints_markup_in_data_literally(committed: dict[str, int], committed_engine: Engine) -> None:
    with Session(committed_engine) as session:
        unit = make_unit(session, name="[/]红旗[bold]服装厂", township="[red]城关镇")
        make_worker(session, unit, name="[/]张[i]三", gender="F", hardship=True)
        session.commit()
    runner = CliRunner(env={"COLUMNS": "200"})
    out = runner.invoke(app, ["audience", "preview", "unit.name contains '红旗'"])
    assert out.exit_code == 0, out.output
    assert "[/]红旗[bold]服装厂" in out.stdout and "[/]张[i]三" in out.stdout and "[red]城关镇" in out.stdout
    out = runner.invoke(app, ["audience", "count", "hardship", "--by", "unit.name"])
    assert out.exit_code == 0, out.output
    assert "[/]红旗[bold]服装厂" in out.stdout
    out = runner.invoke(app, ["audience", "save", "[/]坏名字", "单位名称 = '[/]红旗[bold]服装厂'"])
    assert out.exit_code == 0, out.output
    assert "已保存受众 [/]坏名字：单位名称 = '[/]红旗[bold]服装厂'" in out.stdout
    out = runner.invoke(app, ["audience", "list"])
    assert out.exit_code == 0 and "[/]坏名字" in out.stdout
    out = runner.invoke(app, ["audience", "show", "[/]坏名字"])
    assert out.exit_code == 0 and "当前人数：1" in out.stdout
