"""Yuan text to fen and back, exactly."""

from __future__ import annotations

import pytest

from outreach.errors import InputError
from outreach.money import MAX_AMOUNT_FEN, check_amount, format_fen, parse_yuan, yuan_text


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1", 100),
        ("0.05", 5),
        ("6000.00", 600000),
        ("6,000.5", 600050),
        ("¥1,234.56", 123456),
        ("12元", 1200),
        ("１２．３４", 1234),  # full-width digits and point
        (" 0.1 ", 10),
        ("0.29", 29),  # 0.29 * 100 is 28.999... in binary floating point; Decimal keeps it exact
    ],
)
def test_parse_yuan(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["", "abc", "1.234", "1,23", "1e3", "--1", "0x10", "1.2.3"])
def test_parse_yuan_rejects(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_yuan(text, what="budget")
    assert "budget" in str(info.value)


def test_negative_only_when_allowed() -> None:
    with pytest.raises(InputError, match="金额 '-5' 不能为负数"):
        parse_yuan("-5")
    assert parse_yuan("-5.10", allow_negative=True) == -510


def test_format() -> None:
    assert format_fen(123456) == "¥1,234.56"
    assert format_fen(5) == "¥0.05"
    assert format_fen(-5) == "-¥0.05"
    assert format_fen(600000000) == "¥6,000,000.00"
    assert yuan_text(-123456) == "-1234.56"
    assert yuan_text(0) == "0.00"


def test_amounts_are_bounded() -> None:
    assert parse_yuan("100,000,000") == MAX_AMOUNT_FEN
    with pytest.raises(InputError, match=r"超过允许的最大金额（¥100,000,000\.00）"):
        parse_yuan("100000000.01", what="预算")
    with pytest.raises(InputError, match="数额过大"):
        parse_yuan("1" * 40)
    with pytest.raises(InputError, match="超过允许的最大金额"):
        parse_yuan("-100000001", allow_negative=True)
    with pytest.raises(InputError, match="整数分"):
        check_amount(1.5, what="x")
    with pytest.raises(InputError, match="整数分"):
        check_amount(True, what="x")
    assert check_amount(-MAX_AMOUNT_FEN, what="x") == -MAX_AMOUNT_FEN
    # Exact at any size: no float, no rounding to the decimal context's 28 digits below 10**26 fen.
    assert format_fen(123456789012345678901) == "¥1,234,567,890,123,456,789.01"
