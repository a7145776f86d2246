"""Streaming rows out of registry files (CSV in UTF-8/GBK/GB18030/Big5, or XLSX), one row at a time."""

from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path

from outreach.errors import ImportFileError

SAMPLE_BYTES = 256 * 1024
# Below this share of common characters a decoding is taken for mojibake, and the file for none of ours.
MIN_COMMON_SHARE = 0.6
# Decoding with the superset codecs keeps rare characters that the narrow ones lack: GBK is a subset of
# GB18030, and Big5-HKSCS extends Big5 with characters Hong Kong and Taiwan names use.
_CODECS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "gbk": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
}


@dataclass
class RegistryFile:
    """An open registry file: its header row, how it was read, and its data rows as (line number, cells)."""

    path: Path
    format: str
    encoding: str | None
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]


@lru_cache(maxsize=1)
def _common_characters() -> frozenset[str]:
    """The most used Chinese characters: GB2312 level 1 (simplified) and Big5 level 1 (traditional)."""
    chars: set[str] = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            try:
                chars.add(bytes((lead, trail)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    for lead in range(0xA4, 0xC7):
        for trail in (*range(0x40, 0x7F), *range(0xA1, 0xFF)):
            try:
                chars.add(bytes((lead, trail)).decode("big5"))
            except UnicodeDecodeError:
                continue
    # Full-width punctuation appears in every Chinese sheet.
    chars.update("，。、：；（）“”‘’《》【】　！？·－")
    return frozenset(chars)


def _decodes(sample: bytes, codec: str) -> str | None:
    """The sample decoded strictly, ignoring a multi-byte character cut off at its end; None if it fails."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    try:
        return str(decoder.decode(sample, final=False))
    except UnicodeDecodeError:
        return None


def _common_share(decoded: str) -> float:
    """The share of non-ASCII characters that are common Chinese ones (1.0 when there are none)."""
    wide = [ch for ch in decoded if ord(ch) > 0x7F]
    if not wide:
        return 1.0
    common = _common_characters()
    return sum(ch in common for ch in wide) / len(wide)


def detect_encoding(sample: bytes, *, where: str) -> str:
    """Names a CSV sample's encoding: utf-8-sig, utf-8, gbk, gb18030 or big5; anything else is refused."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in sample:
        raise ImportFileError(f"{where}: not a text file (it holds NUL bytes); save it as CSV or XLSX")
    if _decodes(sample, "utf-8") is not None:
        return "utf-8"
    # Short Chinese texts decode without error in both GB18030 and Big5 more often than not, so the decodings
    # are scored by how much of each consists of common characters; mojibake is mostly rare ones.
    scored: list[tuple[float, str]] = []
    as_gb = _decodes(sample, "gb18030")
    if as_gb is not None:
        scored.append((_common_share(as_gb), "gbk" if _decodes(sample, "gbk") is not None else "gb18030"))
    as_big5 = _decodes(sample, _CODECS["big5"])
    if as_big5 is not None:
        scored.append((_common_share(as_big5), "big5"))
    if scored:
        share, best = max(scored, key=lambda pair: pair[0])
        if share >= MIN_COMMON_SHARE:
            return best
    raise ImportFileError(
        f"{where}: the file is not text in UTF-8, GBK, GB18030 or Big5; "
        "save it from the spreadsheet as CSV UTF-8 or as XLSX"
    )


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text a person would read in it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _decoded_lines(path: Path, codec: str) -> Iterator[str]:
    """The file's lines decoded strictly one by one, so that a bad byte is reported at its exact line.

    Splitting bytes at newlines is safe in all our encodings: none has 0x0A inside a multi-byte character.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield raw.decode(codec)
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"{path.name}: line {number}, byte {exc.start + 1}: not valid {codec} ({exc.reason}); "
                    "the file mixes encodings or is damaged"
                ) from None


def _csv_rows(path: Path, codec: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(_decoded_lines(path, codec), delimiter=delimiter)
    line = 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            yield start, cells
    except csv.Error as exc:
        raise ImportFileError(f"{path.name}: line {reader.line_num}: {exc}") from None


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"{path.name}: not a readable XLSX workbook ({exc})") from None
    try:
        sheet = book.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [cell_text(v) for v in values]
    finally:
        book.close()


def _blank(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells)


@contextmanager
def open_registry_file(path: Path) -> Iterator[RegistryFile]:
    """Opens a CSV or XLSX registry file for streaming; its header is the first non-blank row."""
    where = path.name
    try:
        with path.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    except OSError as exc:
        raise ImportFileError(f"{where}: cannot be read ({exc.strerror})") from None
    suffix = path.suffix.lower()
    if sample.startswith(b"PK\x03\x04") or suffix in (".xlsx", ".xlsm"):
        if not sample.startswith(b"PK\x03\x04"):
            raise ImportFileError(f"{where}: named .xlsx but is not an XLSX workbook")
        fmt, encoding, rows = "xlsx", None, _xlsx_rows(path)
    elif suffix == ".xls" or sample.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(f"{where}: old .xls workbooks are not read; save it as .xlsx or CSV")
    else:
        encoding = detect_encoding(sample, where=where)
        first_line = sample.split(b"\n", 1)[0]
        delimiter = "\t" if b"\t" in first_line and b"," not in first_line else ","
        fmt, rows = "csv", _csv_rows(path, _CODECS[encoding], delimiter)
    try:
        header: list[str] | None = None
        for _line, cells in rows:
            if not _blank(cells):
                header = cells
                break
        if header is None:
            raise ImportFileError(f"{where}: the file has no header row (it is empty)")
        data = ((line, cells) for line, cells in rows if not _blank(cells))
        yield RegistryFile(path=path, format=fmt, encoding=encoding, header=header, rows=data)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def estimate_rows(path: Path) -> int | None:
    """Roughly how many data rows a file holds, for a progress bar; None when it cannot tell cheaply."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            book = openpyxl.load_workbook(path, read_only=True)
            try:
                rows = book.worksheets[0].max_row
            finally:
                book.close()
        except Exception:  # an estimate only; the import itself reports what is wrong
            return None
        return max(0, rows - 1) if rows else None
    lines = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
    return max(0, lines - 1)
