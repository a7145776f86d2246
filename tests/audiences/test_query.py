"""The audience query language: parsing, type checks, errors with positions, and what it selects."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Dialect, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audiences import query
from audiences.models import Unit, Worker
from audiences.query import MAX_DEPTH, MAX_LENGTH, BoolOp, Not, Predicate, parse, tokenize, validate
from audiences.service import compile_audience, recipient_select
from outreach.errors import QueryError
from outreach.i18n import use_language
from tests.audiences.factories import TODAY, make_unit, make_worker, small_registry

ISSUE_EXPRESSIONS = {
    "gender = 'F'": {"w1", "w2", "w3", "w4", "w5", "w7", "w8"},
    "gender = 'F' and unit.kind in ('企业', '事业单位', '机关', '学校')": {
        "w1",
        "w2",
        "w3",
        "w4",
        "w5",
        "w8",
    },
    "gender = 'F' and age between 18 and 60 and unit.township = '城关镇'": {"w1", "w2", "w7"},
    "hardship and consent.sms": {"w1", "w6", "w9"},
    # w4 and w5 have no category: `not (category = ...)` keeps them (a missing value equals nothing).
    "not (category = '公务员') and unit.name contains '纺织'": {"w1", "w4", "w5", "w6"},
}


@pytest.fixture
def registry(session: Session) -> dict[str, Worker]:
    return small_registry(session)


def selected(session: Session, registry: dict[str, Worker], expression: str, today: date = TODAY) -> set[str]:
    """The registry keys of the workers an expression selects (audience only, no channel)."""
    by_id = {w.id: key for key, w in registry.items()}
    stmt = recipient_select(expression=expression, channel=None, today=today)
    return {by_id[row.worker_id] for row in session.execute(stmt) if row.worker_id in by_id}


@pytest.mark.parametrize("expression", list(ISSUE_EXPRESSIONS))
def test_issue_expressions_select_the_known_workers(
    session: Session, registry: dict[str, Worker], expression: str
) -> None:
    assert selected(session, registry, expression) == ISSUE_EXPRESSIONS[expression]


ALL = {f"w{i}" for i in range(1, 10)}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("birth_year = 1985", {"w1"}),
        ("birth_year != 1985", ALL - {"w1"}),  # w8 (no birth year) included: missing is unequal
        ("birth_year <> 1985", ALL - {"w1"}),
        ("birth_year < 1965", {"w3"}),
        ("birth_year <= 1965", {"w2", "w3"}),
        ("birth_year > 2007", {"w5"}),
        ("birth_year >= 2007", {"w4", "w5"}),
        ("category in ('公务员', '教师')", {"w2", "w3", "w9"}),
        ("category not in ('公务员', '教师')", ALL - {"w2", "w3", "w9"}),
        ("birth_year between 1980 and 1990", {"w1", "w6", "w7"}),
        ("birth_year not between 1980 and 1990", ALL - {"w1", "w6", "w7"}),
        ("unit.name contains '纺织'", {"w1", "w4", "w5", "w6", "w9"}),
        ("unit.name not contains '纺织'", {"w2", "w3", "w7", "w8"}),
        ("birth_year is null", {"w8"}),
        ("birth_year is not null", ALL - {"w8"}),
        ("category is null", {"w4", "w5"}),
        ("mobile is not null", {"w1", "w2", "w3", "w6", "w9"}),
        ("mobile is null", {"w4", "w5", "w7", "w8"}),
        ("hardship", {"w1", "w6", "w8", "w9"}),
        ("not hardship", ALL - {"w1", "w6", "w8", "w9"}),
        ("hardship = false", ALL - {"w1", "w6", "w8", "w9"}),
        ("hardship != true", ALL - {"w1", "w6", "w8", "w9"}),
        ("consent.sms = true", {"w1", "w3", "w6", "w9"}),
        ("gender = '女'", {"w1", "w2", "w3", "w4", "w5", "w7", "w8"}),
        ("gender = '男'", {"w6", "w9"}),
        ("gender != 'male'", {"w1", "w2", "w3", "w4", "w5", "w7", "w8"}),
        ("unit.kind = '學校'", {"w3"}),  # traditional spelling of 学校
        ("category = '公務員'", {"w2", "w9"}),  # stored simplified
        ("unit.township = '西城镇'", {"w4", "w9"}),
        ("unit.township != '西城镇'", ALL - {"w4", "w9"}),
        ("unit.postcode >= '365101'", {"w4", "w9"}),
        ("unit.address is null", {"w7"}),
        ('name = "林秀英"', {"w1"}),
        ("true", ALL),
        ("false", set()),
        # Keywords and field names in any case; full-width brackets and commas from Chinese input methods.
        ("GENDER = 'F' AND Unit.Kind IN ('学校') Or Hardship AND NOT Consent.SMS", {"w3", "w8"}),
        ("unit.kind in （'学校'，'机关'）", {"w2", "w3"}),
    ],
)
def test_each_operator(session: Session, registry: dict[str, Worker], expression: str, expected: Any) -> None:
    assert selected(session, registry, expression) == expected


def test_and_binds_tighter_than_or(session: Session, registry: dict[str, Worker]) -> None:
    expression = "gender = 'M' or hardship and category = '企业职工'"
    node = parse(expression)
    assert isinstance(node, BoolOp) and node.op == "or"
    assert isinstance(node.items[1], BoolOp) and node.items[1].op == "and"
    assert selected(session, registry, expression) == {"w1", "w6", "w8", "w9"}
    grouped = "(gender = 'M' or hardship) and category = '企业职工'"
    assert selected(session, registry, grouped) == {"w1", "w6", "w8"}


def test_not_binds_tighter_than_and_and_parentheses_group(
    session: Session, registry: dict[str, Worker]
) -> None:
    assert selected(session, registry, "not gender = 'F' and hardship") == {"w6", "w9"}
    assert selected(session, registry, "not (gender = 'F' and hardship)") == ALL - {"w1", "w8"}
    assert selected(session, registry, "not not hardship") == {"w1", "w6", "w8", "w9"}
    assert selected(session, registry, "((((hardship))))") == {"w1", "w6", "w8", "w9"}
    node = parse("not (a = 1 or b = 2)")
    assert isinstance(node, Not) and isinstance(node.operand, BoolOp)


def test_contains_treats_percent_underscore_and_slash_as_plain_characters(session: Session) -> None:
    units = {
        name: make_unit(session, name=name)
        for name in ("百分百%服装", "百分百服装厂", "A_B公司", "AXB公司", "甲/乙商行", "甲乙商行")
    }
    for unit in units.values():
        make_worker(session, unit, name=f"工人{unit.name}")

    def unit_names(expression: str) -> set[str]:
        stmt = recipient_select(expression=expression, channel=None, today=TODAY)
        return {row.unit_name for row in session.execute(stmt)}

    assert unit_names("unit.name contains '%'") == {"百分百%服装"}
    assert unit_names("unit.name contains '百分百%'") == {"百分百%服装"}
    assert unit_names("unit.name contains 'A_B'") == {"A_B公司"}
    assert unit_names("unit.name contains '_'") == {"A_B公司"}
    assert unit_names("unit.name contains '甲/乙'") == {"甲/乙商行"}
    assert unit_names("unit.name contains 'a_b'") == {"A_B公司"}  # case-insensitive on both backends


def test_age_boundaries_follow_the_given_day(session: Session) -> None:
    unit = make_unit(session)
    for year in (1964, 1965, 2007, 2008):
        make_worker(session, unit, name=f"生于{year}", birth_year=year)

    def years(expression: str, today: date) -> set[int]:
        stmt = select(Worker.birth_year).join(Worker.unit).where(compile_audience(expression, today=today))
        return set(session.scalars(stmt))

    assert years("age between 18 and 60", TODAY) == {1965, 2007}
    assert years("age not between 18 and 60", TODAY) == {1964, 2008}
    assert years("age = 60", TODAY) == {1965}
    assert years("age < 18", TODAY) == {2008}
    assert years("age <= 18", TODAY) == {2007, 2008}
    assert years("age > 60", TODAY) == {1964}
    assert years("age >= 60", TODAY) == {1964, 1965}
    assert years("age in (17, 61)", TODAY) == {1964, 2008}
    # A year later everyone is a year older: 2008 turns 18, 1965 turns 61.
    assert years("age between 18 and 60", date(2026, 1, 1)) == {2007, 2008}


def test_age_compiles_to_birth_year_bounds_so_an_index_can_serve() -> None:
    compiled = compile_audience("age between 18 and 60", today=TODAY).compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    assert "workers.birth_year BETWEEN" in str(compiled)
    assert sorted(compiled.params.values()) == [1965, 2007]


@pytest.mark.parametrize(
    ("expression", "position", "fragment"),
    [
        ("gendr = 'F'", 0, "did you mean gender?"),
        ("gender = 'F' and township = '城关镇'", 17, "did you mean unit.township?"),
        ("age = '老'", 6, "age is a number"),
        ("birth_year = '1980'", 13, "write numbers without quotes"),
        ("hardship > 3", 9, "hardship is a yes/no field"),
        ("hardship = 1", 11, "compare it with true or false"),
        ("unit.kind = '工厂'", 12, "allowed: 企业, 事业单位, 机关, 学校, 其他"),
        ("gender = 'X'", 9, "allowed: F, M"),
        ("unit.postcode = 365100", 16, "put the value in quotes"),
        ("unit.name < '甲'", 10, "no ordering"),
        ("gender contains 'F'", 7, "contains works on free text"),
        ("age contains '1'", 4, "contains works on free text"),
        ("category", 0, "not yes/no"),
        ("mobile = '13800000001'", 7, "only be tested with `is null`"),
        ("mobile contains '138'", 7, "only be tested with `is null`"),
        ("age between 60 and 18", 12, "lower bound"),
        ("name = 'abc", 7, "unterminated text"),
        ('name = "abc', 7, "unterminated text"),
        ("name = 'a\\qb'", 9, "unknown escape"),
        ("gender = ", 9, "expected a value"),
        ("gender 'F'", 7, "unexpected text 'F'"),
        ("gender = 'F' foo", 13, "after a complete condition"),
        ("gender = 'F' )", 13, "after a complete condition"),
        ("(gender = 'F'", 13, "')' to close the '(' at character 1"),
        ("gender = 'F' and", 16, "expected a field name"),
        ("and gender = 'F'", 0, "expected a field name"),
        ("category in ()", 13, "expected a value"),
        ("category in '公务员'", 12, "'(' to open the list"),
        ("category not '公务员'", 13, "expected in, between or contains"),
        ("birth_year between 1 or 2", 21, "'and' between the two bounds"),
        ("category is 'x'", 12, "null after 'is'"),
        ("unit.township = 城关镇", 16, "text values need quotes"),
        ("category = 公务员", 11, "text values need quotes"),
        ("category = abc", 11, "text values need quotes: write 'abc'"),
        ("gender ! 'F'", 7, "'!' must be followed by '='"),
        ("age = 12abc", 8, "cannot run into letters"),
        ("age = 99999999999", 6, "number too large"),
        ("gender = 'F' ; drop table workers", 13, "unexpected character ';'"),
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
    ],
)
def test_errors_point_at_the_place(expression: str, position: int, fragment: str) -> None:
    with use_language("en"), pytest.raises(QueryError) as info:
        validate(expression)
    assert fragment in info.value.message
    assert info.value.position == position, (info.value.position, str(info.value))
    assert info.value.text == expression


def test_error_message_shows_a_caret_under_the_place() -> None:
    with use_language("en"), pytest.raises(QueryError) as info:
        validate("gender = 'F' and unit.kind = '工厂'")
    lines = str(info.value).splitlines()
    assert lines[1] == "  gender = 'F' and unit.kind = '工厂'"
    assert lines[2] == "  " + " " * 29 + "^"


def test_too_long_and_too_deep_input_is_refused_without_exhausting_the_stack() -> None:
    with use_language("en"), pytest.raises(QueryError) as info:
        validate("hardship or " * (MAX_LENGTH // 12 + 1) + "hardship")
    assert "too long" in info.value.message
    assert info.value.position == MAX_LENGTH
    deep = "(" * (MAX_DEPTH + 1) + "hardship" + ")" * (MAX_DEPTH + 1)
    with use_language("en"), pytest.raises(QueryError) as info:
        validate(deep)
    assert "nested too deeply" in info.value.message
    assert info.value.position == MAX_DEPTH
    with use_language("en"), pytest.raises(QueryError, match="nested too deeply"):
        validate("not " * 100 + "hardship")
    # Right at the limit still works.
    validate("(" * MAX_DEPTH + "hardship" + ")" * MAX_DEPTH)
    # A long flat chain is iterative, not recursive: fine up to the length cap.
    validate(" or ".join(["hardship"] * 300))


def test_strings_take_escapes_and_doubled_quotes() -> None:
    assert [t.value for t in tokenize(r"'a\'b' 'it''s' " + r'"say \"hi\"" ' + r"'back\\slash'")][:4] == [
        "a'b",
        "it's",
        'say "hi"',
        "back\\slash",
    ]
    assert tokenize("‘城关镇’")[0].value == "城关镇"


@pytest.mark.parametrize(
    "expression",
    [
        "name = 'x'' or 1=1 --'",
        "name = 'x\\' or 1=1 --'",
        'name = "\'); DROP TABLE workers; --"',
        "unit.name contains '%'' or ''1''=''1'",
        "category in ('a''); delete from units; --', 'b$$;--')",
    ],
)
def test_injection_attempts_stay_literals_and_only_bound_parameters_reach_sql(
    session: Session, expression: str
) -> None:
    node = validate(expression)
    assert isinstance(node, Predicate)
    literals = [str(v.value) for v in node.values]
    dialects: list[Dialect] = [postgresql.dialect(), sqlite.dialect()]  # type: ignore[no-untyped-call]
    for dialect in dialects:
        stmt = recipient_select(expression=expression, channel="letter", today=TODAY)
        compiled = stmt.compile(dialect=dialect)
        sql = str(compiled)
        for literal in literals:
            assert literal not in sql
        bound = [
            v for value in compiled.params.values() for v in (value if isinstance(value, list) else [value])
        ]
        for literal in literals:
            assert any(literal in str(b) for b in bound)
    # And run: the text matches only a worker literally named so; the tables are still there.
    unit = make_unit(session)
    if node.field == "name":
        make_worker(session, unit, name=literals[0])
        make_worker(session, unit, name="x")
        rows = session.execute(recipient_select(expression=expression, channel=None, today=TODAY)).all()
        assert [r.name for r in rows] == [literals[0]]
    else:
        session.execute(recipient_select(expression=expression, channel=None, today=TODAY)).all()
    assert (session.scalar(select(func.count()).select_from(Unit)) or 0) >= 1


def test_values_are_normalised_by_the_checker() -> None:
    node = validate("gender = '女' and unit.kind in ('機關', '学校')")
    assert isinstance(node, BoolOp)
    first, second = node.items
    assert isinstance(first, Predicate) and first.values[0].value == "F"
    assert isinstance(second, Predicate) and [v.value for v in second.values] == ["机关", "学校"]


def test_compile_expression_is_the_service_entry_point() -> None:
    assert str(query.compile_expression("hardship", today=TODAY)) == str(
        compile_audience("hardship", today=TODAY)
    )


# --- the language as planners write it: Chinese names, 是/否, full-width forms, Chinese messages ---------


@pytest.mark.parametrize(
    ("chinese", "english"),
    [
        ("性别 = '女'", "gender = 'F'"),
        ("性別 = '男'", "gender = 'M'"),
        ("年龄 between 18 and 60", "age between 18 and 60"),
        ("出生年份 >= 1985", "birth_year >= 1985"),
        ("职工类别 = '公务员'", "category = '公务员'"),
        ("職工類別 in ('教师', '白领')", "category in ('教师', '白领')"),
        ("困难职工", "hardship"),
        ("困难职工 and 短信同意", "hardship and consent.sms"),
        ("外来务工 = false", "migrant = false"),
        ("单位.乡镇 = '城关镇'", "unit.township = '城关镇'"),
        ("乡镇 = '西城镇'", "unit.township = '西城镇'"),
        ("單位.鄉鎮 != '西城镇'", "unit.township != '西城镇'"),
        ("单位类型 = '学校'", "unit.kind = '学校'"),
        ("单位.类型 in ('企业', '机关')", "unit.kind in ('企业', '机关')"),
        ("单位名称 contains '纺织'", "unit.name contains '纺织'"),
        ("单位地址 is null", "unit.address is null"),
        ("手机号码 is not null", "mobile is not null"),
        ("姓名 = '林秀英'", "name = '林秀英'"),
        (
            "性别 = '女' and 年龄 >= 18 and 单位.乡镇 = '城关镇'",
            "gender = 'F' and age >= 18 and unit.township = '城关镇'",
        ),
    ],
)
def test_chinese_field_names_select_what_the_english_ones_do_with_the_same_sql(
    session: Session, registry: dict[str, Worker], chinese: str, english: str
) -> None:
    assert selected(session, registry, chinese) == selected(session, registry, english)
    for dialect in (postgresql.dialect(), sqlite.dialect()):  # type: ignore[no-untyped-call]
        ours = compile_audience(chinese, today=TODAY).compile(dialect=dialect)
        theirs = compile_audience(english, today=TODAY).compile(dialect=dialect)
        assert str(ours) == str(theirs)
        assert ours.params == theirs.params


def test_the_issue_expression_in_chinese(session: Session, registry: dict[str, Worker]) -> None:
    assert selected(session, registry, "性别 = '女'") == ISSUE_EXPRESSIONS["gender = 'F'"]
    node = validate("性别 = '女'")
    assert isinstance(node, Predicate) and (node.field, node.values[0].value) == ("gender", "F")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("hardship = '是'", {"w1", "w6", "w8", "w9"}),
        ("困难职工 = 是", {"w1", "w6", "w8", "w9"}),
        ("困难职工 = 真", {"w1", "w6", "w8", "w9"}),
        ("困难职工 = 否", ALL - {"w1", "w6", "w8", "w9"}),
        ("困难职工 = '假'", ALL - {"w1", "w6", "w8", "w9"}),
        ("hardship != '否'", {"w1", "w6", "w8", "w9"}),
        ("困难职工=是 and 短信同意=是", {"w1", "w6", "w9"}),
    ],
)
def test_yes_no_fields_take_shi_and_fou(
    session: Session, registry: dict[str, Worker], expression: str, expected: set[str]
) -> None:
    assert selected(session, registry, expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("age>=１８", "age >= 18"),
        ("年龄＞＝１８", "age >= 18"),
        ("年龄 ≥ 18 and 年龄 ≤ 60", "age >= 18 and age <= 60"),
        ("birth_year ≠ １９８５", "birth_year != 1985"),
        ("（困难职工　ａｎｄ　短信同意）", "(hardship and consent.sms)"),
        ("unit.kind in ('企业'、'学校')", "unit.kind in ('企业', '学校')"),
        ("ｇｅｎｄｅｒ＝＇Ｆ＇", "gender = 'F'"),
        ("单位．乡镇 = '城关镇'", "unit.township = '城关镇'"),
        ("birth_year = －１", "birth_year = -1"),
    ],
)
def test_full_width_digits_and_operators_read_like_ascii(
    session: Session, registry: dict[str, Worker], expression: str, expected: str
) -> None:
    assert selected(session, registry, expression) == selected(session, registry, expected)


def test_quoted_values_are_kept_as_typed() -> None:
    node = validate("name = 'ＡＢ１'")
    assert isinstance(node, Predicate) and node.values[0].value == "ＡＢ１"
    assert tokenize("name = ＇x＇")[2].value == "x"


@pytest.mark.parametrize(
    ("expression", "position", "message"),
    [
        ("性别 = 'X'", 5, "性别 没有 'X' 这个值；可用的值：F, M"),
        ("unit.township = 城关镇", 16, "文本值需要加引号：请写成 '城关镇'"),
        ("单位.乡镇 = 城关镇", 8, "文本值需要加引号：请写成 '城关镇'"),
        ("性名 = '女'", 0, "未知字段 '性名'；您是不是想写"),
        ("城关镇", 0, "未知字段 '城关镇'"),
        ("年龄 = '老'", 5, "年龄 是数字，'老' 不是数字（数字不要加引号）"),
        ("困难职工 = '也许'", 7, "困难职工 是“是/否”字段：请与 是/否（或 true/false）比较"),
        ("困难职工 > 1", 5, "困难职工 是“是/否”字段：请写"),
        ("职工类别", 0, "职工类别 是文本字段，不是“是/否”字段"),
        ("年龄 > 18岁", 7, "数字后面不能紧跟字母或汉字"),
        ("性别 = 是", 5, "性别 是文本：请给值加引号，例如 '是'"),
        ("年龄 = 否", 5, "年龄 是数字，否 不是数字"),
        ("性别 = '女' 且 年龄 > 18", 9, "完整的条件之后出现了多余的'且'"),
        ("(性别 = '女'", 9, "此处应为“)”，用来闭合第 1 个字符处的 “(”，但遇到了表达式末尾"),
        ("", 0, "表达式为空"),
    ],
)
def test_messages_are_chinese_by_default(expression: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as info:
        validate(expression)
    assert message in info.value.message, info.value.message
    assert info.value.position == position
    assert f"（第 {position + 1} 个字符处）" in str(info.value)
    assert str(info.value).rstrip().endswith("^")


def test_a_misspelt_chinese_name_gets_a_chinese_suggestion() -> None:
    with pytest.raises(QueryError, match="困难职工"):
        validate("困难职工人 = 是")
    with pytest.raises(QueryError, match=r"单位\.乡镇"):
        validate("单位.乡 = '城关镇'")
