"""Every normalisation and rejection rule of registry values."""

from __future__ import annotations

from datetime import date

import pytest

from audiences import normalise
from audiences.normalise import Malformed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("365100", "365100"), ("３６５１００", "365100"), (" 365100\u3000", "365100"), ("", None), ("  ", None)],
)
def test_postcode_accepted(raw: str, expected: str | None) -> None:
    assert normalise.postcode(raw) == expected


@pytest.mark.parametrize("raw", ["36510", "3651000", "36510A", "365-100"])
def test_postcode_refused(raw: str) -> None:
    with pytest.raises(Malformed, match="不是6位数字"):
        normalise.postcode(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "+86 138 1234 5678",
        "+86-138-1234-5678",
        "0086 13812345678",
        "8613812345678",
        "138-1234-5678",
        "１３８１２３４５６７８",
        " 138 1234 5678\u3000",
        "(+86) 13812345678",
    ],
)
def test_mobile_accepted(raw: str) -> None:
    assert normalise.mobile(raw) == "13812345678"


@pytest.mark.parametrize("raw", ["138123456789", "1381234567", "23812345678", "12812345678", "1381234567a"])
def test_mobile_refused(raw: str) -> None:
    with pytest.raises(Malformed, match="不是以13–19开头的11位数字"):
        normalise.mobile(raw)


def test_credit_code() -> None:
    assert normalise.credit_code("91110000600037341L") == "91110000600037341L"
    assert normalise.credit_code(" ９１１１００００６０００３７３４１ｌ ") == "91110000600037341L"
    assert normalise.credit_code("") is None
    with pytest.raises(Malformed, match="校验位不对"):
        normalise.credit_code("91110000600037341M")
    with pytest.raises(Malformed, match="不是18位"):
        normalise.credit_code("9111000060003734")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("女", "F"), ("女性", "F"), ("F", "F"), ("f", "F"), ("female", "F"), ("Female", "F"), ("Ｆ", "F"),
        ("男", "M"), ("男性", "M"), ("M", "M"), ("male", "M"), (" 男 ", "M"), ("", None),
    ],
)  # fmt: skip
def test_gender(raw: str, expected: str | None) -> None:
    assert normalise.gender(raw) == expected


@pytest.mark.parametrize("raw", ["未知", "X", "woman", "女士"])
def test_unknown_gender_refused(raw: str) -> None:
    with pytest.raises(Malformed, match="性别"):
        normalise.gender(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("是", True), ("否", False), ("Y", True), ("n", False), ("yes", True), ("No", False),
        ("true", True), ("FALSE", False), ("1", True), ("0", False), ("１", True), ("", None),
    ],
)  # fmt: skip
def test_flag(raw: str, expected: bool | None) -> None:
    assert normalise.flag(raw) is expected


def test_flag_refused() -> None:
    with pytest.raises(Malformed):
        normalise.flag("也许")


def test_text_and_full_width_spaces() -> None:
    assert normalise.text("\u3000尤溪县 城关镇\u3000\u3000水南路 ", max_length=50) == "尤溪县 城关镇 水南路"
    assert normalise.text("\u3000 ", max_length=5) is None
    with pytest.raises(Malformed, match="超过 5 个字符"):
        normalise.text("尤溪县城关镇", max_length=5)


def test_names_lose_alignment_spaces() -> None:
    assert normalise.name("王\u3000芳", max_length=50) == "王芳"
    assert normalise.name(" 王 芳 ", max_length=50) == "王芳"
    assert normalise.name("Maria  Lopez", max_length=50) == "Maria Lopez"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1985", (1985, None)),
        ("1985年", (1985, None)),
        ("１９８５", (1985, None)),
        ("1985-03-12", (1985, date(1985, 3, 12))),
        ("1985/3/12", (1985, date(1985, 3, 12))),
        ("1985.3.12", (1985, date(1985, 3, 12))),
        ("1985年3月12日", (1985, date(1985, 3, 12))),
        ("19850312", (1985, date(1985, 3, 12))),
        ("", (None, None)),
    ],
)
def test_birth(raw: str, expected: tuple[int | None, date | None]) -> None:
    assert normalise.birth(raw, today=date(2026, 1, 1)) == expected


@pytest.mark.parametrize("raw", ["1985-13-40", "85", "1899", "2030", "三月", "1985-02-30"])
def test_birth_refused(raw: str) -> None:
    with pytest.raises(Malformed, match="出生日期"):
        normalise.birth(raw, today=date(2026, 1, 1))


def test_unit_kind_and_category() -> None:
    assert normalise.unit_kind("企業") == "企业"
    assert normalise.unit_kind("事業單位") == "事业单位"
    assert normalise.unit_kind("学校") == "学校"
    assert normalise.unit_kind("") is None
    with pytest.raises(Malformed, match="单位类型"):
        normalise.unit_kind("公司")
    assert normalise.category("公務員", max_length=50) == "公务员"
    assert normalise.category("白领", max_length=50) == "白领"


def test_worker_no() -> None:
    assert normalise.worker_no(" ＹＸ０００１ ", max_length=50) == "YX0001"
    assert normalise.worker_no("", max_length=50) is None


def test_reasons_are_chinese_by_default_and_english_when_asked() -> None:
    from outreach.i18n import use_language

    with pytest.raises(Malformed) as chinese:
        normalise.mobile("12345")
    assert str(chinese.value) == "手机号“12345”不是以13–19开头的11位数字"
    with use_language("en"), pytest.raises(Malformed) as english:
        normalise.mobile("12345")
    assert str(english.value) == "mobile '12345' is not 11 digits starting 13-19"
