"""受众 pages: the live count and breakdowns, the caret error, the unmatched-value warning, masked names, the
guided builder (with and without htmx), save and rename; refusals for roles that may not see the registry."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences import service
from audiences.importer import import_registry
from audiences.models import Audience
from audiences.sample import write_sample
from tests.web.conftest import People, csrf_of, login


@pytest.fixture
def registry(committed_engine: Engine, tmp_path: Path) -> Path:
    """A small county sample, imported through the same importer as the CLI."""
    path = tmp_path / "county.csv"
    write_sample(path, workers=300, seed=7)
    with Session(committed_engine) as session:
        import_registry(session=session, path=path)
        session.commit()
    return path


def _count(engine: Engine, expression: str) -> int:
    with Session(engine) as session:
        return service.count(session=session, expression=expression).total


def _total(html: str) -> int:
    m = re.search(r'<p class="total"><strong>([\d,]+)</strong>', html)
    assert m, html
    return int(m.group(1).replace(",", ""))


def test_the_live_fragment_counts_as_the_cli_does(
    client: TestClient, people: People, registry: Path, committed_engine: Engine
) -> None:
    login(client, "planner")
    page = client.get("/audiences?expression=" + quote("性别 = '女'"))
    assert page.status_code == 200
    assert 'hx-trigger="keyup changed delay:400ms' in page.text
    assert '<datalist id="field-names">' in page.text and '<option value="乡镇">' in page.text
    expected = _count(committed_engine, "gender = 'F'")
    assert expected > 0 and _total(page.text) == expected
    live = client.get("/audiences/live", params={"expression": "gender = 'F'"})
    assert live.status_code == 200 and _total(live.text) == expected
    assert "按乡镇" in live.text and "按单位类型" in live.text and "<svg" in live.text
    assert "可寄信" in live.text and "可发短信" in live.text
    assert 'id="save-expression"' in live.text and 'hx-swap-oob="true"' in live.text


def test_an_error_points_at_the_place_like_the_cli(
    client: TestClient, people: People, registry: Path
) -> None:
    login(client, "planner")
    live = client.get("/audiences/live", params={"expression": "性别 = '女' and 年龄 >"})
    assert live.status_code == 200
    assert 'role="alert"' in live.text and "<mark>" in live.text
    assert "^" in live.text and "第 " in live.text  # the CLI's "(at character n)" and caret


def test_a_value_no_one_has_names_the_closest(
    client: TestClient, people: People, registry: Path, committed_engine: Engine
) -> None:
    with Session(committed_engine) as session:
        town = service.field_values(session=session, field="unit.township")[0]  # e.g. 城关镇
    login(client, "planner")
    live = client.get("/audiences/live", params={"expression": f"乡镇 = '{town[:-1]}'"})
    warning = re.search(r'<p class="warning" role="status">([^<]*)</p>', live.text)
    assert warning and town in warning.group(1) and "名址库" in warning.group(1)


def test_names_are_masked_except_for_admins(
    client: TestClient, people: People, registry: Path, committed_engine: Engine
) -> None:
    with Session(committed_engine) as session:
        first = service.sample_recipients(
            session=session, expression="gender = 'F'", size=1, mask_names=False
        )[0]
    login(client, "planner")
    masked = client.get("/audiences/live", params={"expression": "gender = 'F'"}).text
    assert first.name not in masked and f"<td>{first.name[0]}*" in masked
    client.cookies.clear()
    login(client, "admin")
    shown = client.get("/audiences/live", params={"expression": "gender = 'F'"}).text
    assert f"<td>{first.name}</td>" in shown


def test_the_guided_builder_writes_the_expression_without_javascript(
    client: TestClient, people: People, registry: Path, committed_engine: Engine
) -> None:
    login(client, "planner")
    chosen = client.get("/audiences/build", params={"step": "field", "field": "gender"})
    assert '<option value="女">女</option>' in chosen.text
    built = client.get(
        "/audiences/build",
        params={"expression": "", "field": "gender", "op": "=", "choice": "女", "step": "add"},
    )
    assert built.status_code == 200
    assert 'value="性别 = &#39;女&#39;"' in built.text
    assert _total(built.text) == _count(committed_engine, "gender = 'F'")
    # A second condition is joined; township values come from the registry itself.
    towns = client.get("/audiences/builder", params={"field": "unit.township"}).text
    town = re.findall(r'<option value="([^"]+)">', towns.split('name="choice"')[1])[0]
    both = client.get(
        "/audiences/build",
        params={
            "expression": "性别 = '女'",
            "field": "unit.township",
            "op": "=",
            "choice": town,
            "joiner": "and",
        },
    )
    assert f"性别 = &#39;女&#39; and 乡镇 = &#39;{town}&#39;" in both.text
    bad = client.get("/audiences/build", params={"field": "age", "op": ">=", "value": "abc"})
    assert bad.status_code == 422 and "数字" in bad.text


def test_save_and_rename(
    client: TestClient, people: People, registry: Path, committed_engine: Engine
) -> None:
    login(client, "planner")
    page = client.get("/audiences")
    token = csrf_of(page.text)
    saved = client.post(
        "/audiences/save",
        data={"csrf_token": token, "name": "女职工", "expression": "性别 = '女'"},
        follow_redirects=True,
    )
    assert saved.status_code == 200 and "女职工" in saved.text and 'class="flash"' in saved.text
    renamed = client.post(
        "/audiences/rename",
        data={"csrf_token": token, "name": "女职工", "new_name": "俏佳人-女职工"},
        follow_redirects=True,
    )
    assert renamed.status_code == 200 and "俏佳人-女职工" in renamed.text
    with Session(committed_engine) as session:
        names = session.scalars(select(Audience.name)).all()
    assert names == ["俏佳人-女职工"]
    wrong = client.post(
        "/audiences/save",
        data={"csrf_token": token, "name": "x", "expression": "性别 = "},
        follow_redirects=True,
    )
    assert wrong.status_code == 422 and 'role="alert"' in wrong.text
    no_csrf = client.post("/audiences/save", data={"name": "y", "expression": "性别 = '女'"})
    assert no_csrf.status_code == 403


@pytest.mark.parametrize("who", ["approver", "finance", "shop"])
def test_roles_without_the_registry_are_refused_in_chinese(
    client: TestClient, people: People, who: str
) -> None:
    login(client, who)
    for url in ("/audiences", "/audiences/live?expression=true", "/audiences/builder?field=gender"):
        refused = client.get(url)
        assert refused.status_code == 403, url
        assert "不得" in refused.text or "无权" in refused.text or "不能" in refused.text, refused.text


def test_an_admin_reads_but_may_not_save(client: TestClient, people: People, registry: Path) -> None:
    login(client, "admin")
    page = client.get("/audiences")
    assert page.status_code == 200 and 'action="/audiences/save"' not in page.text
    refused = client.post(
        "/audiences/save", data={"csrf_token": csrf_of(page.text), "name": "x", "expression": "true"}
    )
    assert refused.status_code == 403


def test_the_overview_reaches_as_many_as_count_per_channel(registry: Path, committed_engine: Engine) -> None:
    from audiences.models import Suppression, Worker

    with Session(committed_engine) as session, session.begin():
        women = session.scalars(
            select(Worker)
            .where(Worker.gender == "F", Worker.mobile.is_not(None))
            .order_by(Worker.id)
            .limit(4)
        ).all()
        session.add(Suppression(channel="letter", reason="returned_mail", worker_id=women[0].id))
        session.add(Suppression(channel="sms", reason="opt_out", mobile=women[1].mobile))
        session.add(Suppression(channel="all", reason="opt_out", worker_id=women[2].id))
        session.add(
            Suppression(channel="sms", reason="sms_reply", worker_id=women[3].id, mobile=women[3].mobile)
        )
        women[3].mobile = None
    with Session(committed_engine) as session:
        for expression in ("gender = 'F'", "true", "乡镇 is null"):
            found = service.overview(session=session, expression=expression)
            assert found.total == service.count(session=session, expression=expression).total
            for channel in ("letter", "sms"):
                expected = service.count(session=session, expression=expression, channel=channel).total
                assert found.reach[channel] == expected, (expression, channel)
            assert sum(r.count for r in found.by_kind) == found.total


def test_the_builder_services_compose_checked_expressions(registry: Path, committed_engine: Engine) -> None:
    from outreach.errors import Conflict, InputError

    assert service.compose_condition(field="性别", op="=", value="女") == "性别 = '女'"
    assert (
        service.compose_condition(field="unit.name", op="contains", value="纺'织")
        == "单位名称 contains '纺\\'织'"
    )
    assert service.compose_condition(field="hardship", op="no") == "not 困难职工"
    assert service.compose_condition(field="mobile", op="is null") == "手机号码 is null"
    assert service.combine(expression="性别 = '女' or 困难职工", condition="年龄 >= 40") == (
        "(性别 = '女' or 困难职工) and 年龄 >= 40"
    )
    assert service.combine(expression="", condition="困难职工", joiner="or") == "困难职工"
    for bad in (
        {"field": "mobile", "op": "=", "value": "138"},
        {"field": "age", "op": "contains", "value": "1"},
    ):
        with pytest.raises(InputError):
            service.compose_condition(**bad)
    with pytest.raises(InputError):
        service.combine(expression="困难职工", condition="农民工", joiner="xor")
    with Session(committed_engine) as session:
        towns = service.field_values(session=session, field="unit.township", limit=3)
        assert len(towns) == 3 and list(towns) == sorted(towns)
        assert service.field_values(session=session, field="gender") == ("女", "男")
        assert service.field_values(session=session, field="age") == ()
        service.save(session=session, name="甲", expression="true")
        service.save(session=session, name="乙", expression="true")
        with pytest.raises(Conflict):
            service.rename(session=session, name="甲", new_name="乙")
        assert service.rename(session=session, name="甲", new_name=" 丙 ").name == "丙"
        session.rollback()
