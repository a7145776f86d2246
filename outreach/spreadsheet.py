"""CSV that is safe to open in a spreadsheet: the one place that neutralises formula-like cells."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

# A cell starting with one of these is run as a formula by Excel/WPS/LibreOffice (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text, with a leading apostrophe when a spreadsheet would take it for a formula.

    A NUL character (which spreadsheets cut text at) is shown as the replacement character �.
    """
    text = "" if value is None else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if text.startswith(FORMULA_STARTS):
        # A negative number is data, not a formula; keep it readable as a number.
        if text[0] == "-" and _is_number(text):
            return text
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *, bom: bool = True
) -> int:
    """Writes a spreadsheet-safe CSV (UTF-8 with BOM so Excel reads the Chinese right); returns row count."""
    count = 0
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        out = csv.writer(f)
        out.writerow([safe_cell(h) for h in header])
        for row in rows:
            out.writerow([safe_cell(v) for v in row])
            count += 1
    return count
