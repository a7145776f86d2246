"""Money: the one place that turns yuan text into integer fen and fen back into text (Decimal, not float),
and that knows how large one amount may be."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from outreach.errors import InputError
from outreach.i18n import _

FEN_PER_YUAN = 100
# The largest single amount anyone may book: a budget, an adjustment (¥100,000,000). Sums of bounded
# entries stay far inside a 64-bit integer, so no statement, budget or estimate can overflow.
MAX_AMOUNT_FEN = 100_000_000 * FEN_PER_YUAN
# The largest price on a rate card: a unit price or one fee (¥1,000,000; the columns are 32-bit).
MAX_PRICE_FEN = 1_000_000 * FEN_PER_YUAN
# Optional sign, digits with optional thousands commas, at most two decimals (fen is the smallest unit).
_YUAN = re.compile(r"^(?P<sign>[+-]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d{1,2}))?$")
_EXTRA_DECIMALS = re.compile(r"^[+-]?[\d,]+\.\d{3,}$")


def parse_yuan(
    text: str, *, allow_negative: bool = False, what: str | None = None, limit_fen: int = MAX_AMOUNT_FEN
) -> int:
    """Parses yuan text ("1", "0.05", "6,000.00", "¥12", "12元", full-width digits) into integer fen."""
    raw = text
    what = what or _("amount")
    # NFKC folds full-width digits, signs and ￥ into their ASCII forms.
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
    cleaned = cleaned.removeprefix("¥").removesuffix("元")
    if cleaned[:1] in "+-" and cleaned[1:2] == "¥":
        cleaned = cleaned[0] + cleaned[2:]
    match = _YUAN.match(cleaned)
    if match is None:
        if _EXTRA_DECIMALS.match(cleaned):
            raise InputError(
                _("{what} {value!r}: at most two decimals (1 fen = 0.01 yuan)", what=what, value=raw)
            )
        raise InputError(
            _("{what} {value!r} is not an amount in yuan (e.g. 1, 0.05, 6000.00)", what=what, value=raw)
        )
    if len(match["int"].replace(",", "")) > 15:
        raise InputError(_("{what} {value!r} is too large", what=what, value=raw[:40]))
    try:
        value = Decimal(match["int"].replace(",", "") + "." + (match["frac"] or "0"))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
        raise InputError(_("{what} {value!r} is not an amount in yuan", what=what, value=raw)) from exc
    fen = int(value * FEN_PER_YUAN)
    if match["sign"] == "-":
        fen = -fen
    if fen < 0 and not allow_negative:
        raise InputError(_("{what} {value!r} must not be negative", what=what, value=raw))
    check_amount(fen, what=what, limit_fen=limit_fen)
    return fen


def check_amount(
    fen: object, *, what: str, limit_fen: int = MAX_AMOUNT_FEN, allow_negative: bool = True
) -> int:
    """Checks one amount in fen: a whole number, within ±limit (InputError saying what and the limit)."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise InputError(_("{what} {value!r}: must be a whole number of fen", what=what, value=fen))
    if fen < 0 and not allow_negative:
        raise InputError(_("{what} {value} must not be negative", what=what, value=format_fen(fen)))
    if abs(fen) > limit_fen:
        raise InputError(
            _(
                "{what} {value} is more than the largest amount allowed ({limit})",
                what=what,
                value=format_fen(fen),
                limit=format_fen(limit_fen),
            )
        )
    return fen


def fen_to_decimal(fen: int) -> Decimal:
    """Integer fen as Decimal yuan with two places (12345 -> Decimal('123.45'))."""
    # scaleb is exact (a shift of the exponent), unlike a division rounded to the context's precision.
    return Decimal(fen).scaleb(-2)


def yuan_text(fen: int) -> str:
    """Fen as plain yuan text for files: '1234.56', '-0.05' (no symbol, no grouping)."""
    return f"{fen_to_decimal(fen):.2f}"


def format_fen(fen: int) -> str:
    """Fen for people: '¥1,234.56', '-¥0.05'."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{fen_to_decimal(abs(fen)):,.2f}"
