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
        ("category = abc", 11, "put text values in quotes"),
        ("gender ! 'F'", 7, "'!' must be followed by '='"),
        ("age = 12abc", 8, "cannot run into letters"),
        ("age = 99999999999", 6, "number too large"),
        ("gender = 'F' ; drop table workers", 13, "unexpected character ';'"),
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
    ],
)
def test_errors_point_at_the_place(expression: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        validate(expression)
    assert fragment in info.value.message
    assert info.value.position == position, (info.value.position, str(info.value))
    assert info.value.text == expression


def test_error_message_shows_a_caret_under_the_place() -> None:
    with pytest.raises(QueryError) as info:
        validate("gender = 'F' and unit.kind = '工厂'")
    lines = str(info.value).splitlines()
    assert lines[1] == "  gender = 'F' and unit.kind = '工厂'"
    assert lines[2] == "  " + " " * 29 + "^"


def test_too_long_and_too_deep_input_is_refused_without_exhausting_the_stack() -> None:
    with pytest.raises(QueryError) as info:
        validate("hardship or " * (MAX_LENGTH // 12 + 1) + "hardship")
    assert "too long" in info.value.message
    assert info.value.position == MAX_LENGTH
    deep = "(" * (MAX_DEPTH + 1) + "hardship" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(QueryError) as info:
        validate(deep)
    assert "nested too deeply" in info.value.message
    assert info.value.position == MAX_DEPTH
    with pytest.raises(QueryError, match="nested too deeply"):
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
        stmt = recipient_select(expression=expression, channel="mail", today=TODAY)
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
