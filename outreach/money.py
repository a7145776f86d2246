"""Money: the one place that turns yuan text into integer fen and fen back into text (Decimal, not float)."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from outreach.errors import InputError

FEN_PER_YUAN = 100
# Optional sign, digits with optional thousands commas, at most two decimals (fen is the smallest unit).
_YUAN = re.compile(r"^(?P<sign>[+-]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d{1,2}))?$")
_EXTRA_DECIMALS = re.compile(r"^[+-]?[\d,]+\.\d{3,}$")


def parse_yuan(text: str, *, allow_negative: bool = False, what: str = "amount") -> int:
    """Parses yuan text ("1", "0.05", "6,000.00", "¥12", "12元", full-width digits) into integer fen."""
    raw = text
    # NFKC folds full-width digits, signs and ￥ into their ASCII forms.
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
    cleaned = cleaned.removeprefix("¥").removesuffix("元")
    if cleaned[:1] in "+-" and cleaned[1:2] == "¥":
        cleaned = cleaned[0] + cleaned[2:]
    match = _YUAN.match(cleaned)
    if match is None:
        if _EXTRA_DECIMALS.match(cleaned):
            raise InputError(f"{what} {raw!r}: at most two decimals (1 fen = 0.01 yuan)")
        raise InputError(f"{what} {raw!r} is not an amount in yuan (e.g. 1, 0.05, 6000.00)")
    try:
        value = Decimal(match["int"].replace(",", "") + "." + (match["frac"] or "0"))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
        raise InputError(f"{what} {raw!r} is not an amount in yuan") from exc
    fen = int(value * FEN_PER_YUAN)
    if match["sign"] == "-":
        fen = -fen
    if fen < 0 and not allow_negative:
        raise InputError(f"{what} {raw!r} must not be negative")
    return fen


def fen_to_decimal(fen: int) -> Decimal:
    """Integer fen as Decimal yuan with two places (12345 -> Decimal('123.45'))."""
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"))


def yuan_text(fen: int) -> str:
    """Fen as plain yuan text for files: '1234.56', '-0.05' (no symbol, no grouping)."""
    return f"{fen_to_decimal(fen):.2f}"


def format_fen(fen: int) -> str:
    """Fen for people: '¥1,234.56', '-¥0.05'."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{fen_to_decimal(abs(fen)):,.2f}"
