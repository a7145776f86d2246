"""Streaming rows out of registry files, one row at a time, whatever the file is called.

The format comes from the file's content, never its name: a ZIP is an XLSX workbook (also when named .xls or
.csv), an OLE2 compound file is an old .xls (refused with what to do), anything else is text: CSV or
tab-separated, in UTF-8, UTF-16 (Excel's "Unicode text"), GBK, GB18030 or Big5. Hostile or damaged files
end in an ImportFileError that says where and why, in bounded time and memory: only regular files are read,
a workbook's parts are measured before anything is unpacked, header rows are capped in width, and rows are
cut to the header's width as they are read.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
import zipfile
from collections.abc import Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from outreach.errors import ImportFileError, OutreachError
from outreach.i18n import _

SAMPLE_BYTES = 256 * 1024
_Rows = Generator[tuple[int, list[str]], None, None]
# Below this share of common characters a decoding is taken for mojibake, and the file for none of ours.
MIN_COMMON_SHARE = 0.6
# More NUL bytes in the sample than this (or than one in a thousand bytes) make a file binary; fewer are
# stray ones, which the importer rejects with the row that holds them, wherever in the file they are.
BINARY_NULS = 4
NUL = "\x00"
# Decoding with the superset codecs keeps rare characters that the narrow ones lack: GBK is a subset of
# GB18030, and Big5-HKSCS extends Big5 with characters Hong Kong and Taiwan names use.
_CODECS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf-16": "utf-16",
    "gbk": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
}
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# A registry has about twenty columns; a header row wider than this is not a registry's.
MAX_COLUMNS = 500
# The most rows an Excel or WPS worksheet holds; a row number beyond it only comes from a damaged file.
MAX_SHEET_ROWS = 1_048_576
# Workbook limits checked on the ZIP directory before anything is unpacked. Worksheets are streamed, so
# they may be big; every other part (shared strings, styles) is read whole into memory by openpyxl.
MAX_SHEET_PART_BYTES = 2 << 30
MAX_OTHER_PART_BYTES = 256 << 20
MAX_PARTS = 10_000
# Spreadsheet XML packs 5-30 times; a part packed tighter than this is made to expand (a ZIP bomb).
MAX_PACK_RATIO = 200
# Below this unpacked size a part's ratio does not matter.
RATIO_FLOOR_BYTES = 1 << 20


@dataclass
class RegistrySheet:
    """One table of a registry file: its header row (trailing blank cells dropped) and its non-blank rows.

    `rows` gives (line number, cells) with at most as many cells as the header, except CSV rows, which
    keep their extra cells so that the importer can name filled cells without a header.
    """

    name: str | None
    header: list[str]
    header_line: int
    rows: Iterator[tuple[int, list[str]]]

    def where(self, filename: str) -> str:
        """The file, and the sheet when it has a name, for messages."""
        if self.name is None:
            return filename
        return _("{file}, sheet {sheet}", file=filename, sheet=self.name)


@dataclass
class RegistryFile:
    """An open registry file: how it was read and its tables (a workbook's non-empty sheets; one for CSV)."""

    path: Path
    format: str
    encoding: str | None
    sheets: list[RegistrySheet] = field(default_factory=list)


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
    """Names a text sample's encoding: utf-8-sig, utf-16, utf-8, gbk, gb18030 or big5; else refused."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    # Excel's "Unicode text" export: UTF-16 with a byte-order mark.
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if sample.count(0) > max(BINARY_NULS, len(sample) // 1000):
        raise ImportFileError(
            _("{file}: not a text file (it holds NUL bytes); save it as CSV or XLSX", file=where)
        )
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
        _(
            "{file}: the file is not text in UTF-8, UTF-16, GBK, GB18030 or Big5; "
            "save it from the spreadsheet as CSV UTF-8 or as XLSX",
            file=where,
        )
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


def check_regular_file(path: Path) -> None:
    """Refuses what is not a regular file (a device such as /dev/zero, a pipe, a folder) before reading it.

    A device or pipe may never end, and reading one would hang the import; stat() does not read it.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ImportFileError(
            _("{file}: cannot be read ({reason})", file=path.name, reason=exc.strerror or str(exc))
        ) from None
    if not stat.S_ISREG(mode):
        raise ImportFileError(
            _(
                "{file}: not a regular file (a device, pipe or folder); give a saved CSV or XLSX file",
                file=path.name,
            )
        )


def _decoded_lines(path: Path, codec: str) -> Generator[str, None, None]:
    """The file's lines decoded strictly one by one, so that a bad byte is reported at its exact line.

    Splitting bytes at newlines is safe in these encodings: none has 0x0A inside a multi-byte character.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield raw.decode(codec)
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    _(
                        "{file}: line {line}, byte {byte}: not valid {codec}; "
                        "the file mixes encodings or is damaged",
                        file=path.name,
                        line=number,
                        byte=exc.start + 1,
                        codec=codec,
                    )
                ) from None


def _utf16_lines(path: Path) -> Generator[str, None, None]:
    """A UTF-16 file's lines (its 0x0A bytes are halves of characters, so it is decoded as a stream)."""
    number = 0
    with (
        path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-16", errors="strict", newline="") as text,
    ):
        try:
            for number, line in enumerate(text, start=1):  # noqa: B007 - number is read after the loop
                yield line
        except UnicodeDecodeError:
            raise ImportFileError(
                _(
                    "{file}: line {line}, byte {byte}: not valid {codec}; "
                    "the file mixes encodings or is damaged",
                    file=path.name,
                    line=number + 1,
                    byte=1,
                    codec="utf-16",
                )
            ) from None


def _csv_rows(lines: Iterator[str], where: str, delimiter: str) -> _Rows:
    reader = csv.reader(lines, delimiter=delimiter)
    line = 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            yield start, cells
    except csv.Error as exc:
        raise ImportFileError(
            _(
                "{file}: line {line}: the CSV is malformed ({error})",
                file=where,
                line=reader.line_num,
                error=exc,
            )
        ) from None


def _blank(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells)


def _header_of(rows: Iterator[tuple[int, list[str]]], where: str) -> tuple[int, list[str]] | None:
    """The first non-blank row, trailing blank cells dropped; None when there is none."""
    for line, cells in rows:
        if not _blank(cells):
            while not cells[-1].strip():
                cells.pop()
            if len(cells) > MAX_COLUMNS:
                raise ImportFileError(
                    _(
                        "{where}: the header row (line {line}) has {count} columns; a registry has at most "
                        "{limit}",
                        where=where,
                        line=line,
                        count=len(cells),
                        limit=MAX_COLUMNS,
                    )
                )
            return line, cells
    return None


def _text_file(path: Path, sample: bytes, stack: ExitStack) -> RegistryFile:
    encoding = detect_encoding(sample, where=path.name)
    if encoding == "utf-16":
        lines = _utf16_lines(path)
        first_line = sample.decode("utf-16", errors="ignore").split("\n", 1)[0]
    else:
        lines = _decoded_lines(path, _CODECS[encoding])
        first_line = sample.split(b"\n", 1)[0].decode("latin-1")
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    rows = _csv_rows(lines, path.name, delimiter)
    stack.callback(rows.close)
    stack.callback(lines.close)
    found = _header_of(rows, path.name)
    if found is None:
        raise ImportFileError(_("{file}: the file has no header row (it is empty)", file=path.name))
    header_line, header = found
    data = ((line, cells) for line, cells in rows if not _blank(cells))
    sheet = RegistrySheet(name=None, header=header, header_line=header_line, rows=data)
    return RegistryFile(path=path, format="csv", encoding=encoding, sheets=[sheet])


def check_workbook_parts(archive: zipfile.ZipFile, where: str) -> None:
    """Refuses a workbook whose parts would unpack to more than it can need (a ZIP bomb), from its directory.

    The sizes are those the ZIP declares; zipfile stops unpacking a part at its declared size, so a part
    cannot grow beyond what is checked here.
    """
    infos = archive.infolist()
    if len(infos) > MAX_PARTS:
        raise ImportFileError(
            _(
                "{file}: the workbook has {count} parts; it is not a registry workbook",
                file=where,
                count=len(infos),
            )
        )
    for info in infos:
        is_sheet = info.filename.startswith("xl/worksheets/")
        limit = MAX_SHEET_PART_BYTES if is_sheet else MAX_OTHER_PART_BYTES
        if info.file_size > limit:
            raise ImportFileError(
                _(
                    "{file}: the workbook part {part} unpacks to {size} MB, more than the {limit} MB "
                    "a registry needs; the file is refused",
                    file=where,
                    part=info.filename,
                    size=info.file_size >> 20,
                    limit=limit >> 20,
                )
            )
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_PACK_RATIO * max(
            1, info.compress_size
        ):
            raise ImportFileError(
                _(
                    "{file}: the workbook part {part} unpacks to {size} MB from {packed} KB ({ratio} times); "
                    "spreadsheets never pack that tightly, so the file is refused as a ZIP bomb",
                    file=where,
                    part=info.filename,
                    size=info.file_size >> 20,
                    packed=max(1, info.compress_size >> 10),
                    ratio=info.file_size // max(1, info.compress_size),
                )
            )


def _damaged(where: str, exc: BaseException) -> ImportFileError:
    detail = str(exc).strip() or type(exc).__name__
    return ImportFileError(
        _(
            "{where}: the workbook is damaged ({error}); open it in Excel or WPS and save it again",
            where=where,
            error=detail[:200],
        )
    )


def _sheet_rows(sheet: Any, where: str, *, first: int, width: int) -> _Rows:
    """A worksheet's rows from line `first`, each cut to `width` cells; damage is an ImportFileError."""
    try:
        for number, values in enumerate(
            sheet.iter_rows(min_row=first, max_col=width, values_only=True), start=first
        ):
            if number > MAX_SHEET_ROWS:
                raise ImportFileError(
                    _(
                        "{where}: row numbers go beyond {limit}, the most a worksheet holds; "
                        "the workbook is damaged",
                        where=where,
                        limit=MAX_SHEET_ROWS,
                    )
                )
            yield number, [cell_text(v) for v in values]
    except OutreachError:
        raise
    except Exception as exc:  # openpyxl and the XML parser raise anything on a damaged part
        raise _damaged(where, exc) from None


def _workbook(path: Path, handle: BinaryIO, stack: ExitStack) -> RegistryFile:
    import openpyxl

    where = path.name
    try:
        with zipfile.ZipFile(handle) as archive:
            check_workbook_parts(archive, where)
        handle.seek(0)
        # A file object, not the path: openpyxl refuses paths by their extension (.xls, .csv).
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except OutreachError:
        raise
    except zipfile.BadZipFile as exc:
        raise ImportFileError(
            _("{file}: not a readable XLSX workbook ({error})", file=where, error=exc)
        ) from None
    except Exception as exc:  # a damaged part: invalid XML, a broken styles or workbook part
        raise _damaged(where, exc) from None
    stack.callback(book.close)
    registry = RegistryFile(path=path, format="xlsx", encoding=None)
    for sheet in book.worksheets:
        # The <dimension> a file declares may claim a million rows and columns; rows are read as they are.
        sheet.reset_dimensions()
        sheet_where = _("{file}, sheet {sheet}", file=where, sheet=sheet.title)
        head = _sheet_rows(sheet, sheet_where, first=1, width=MAX_COLUMNS + 1)
        try:
            found = _header_of(head, sheet_where)
        finally:
            head.close()
        if found is None:
            continue  # an empty sheet: nothing to import, nothing to say
        header_line, header = found
        rows = _sheet_rows(sheet, sheet_where, first=header_line + 1, width=len(header))
        stack.callback(rows.close)
        data = ((line, cells) for line, cells in rows if not _blank(cells))
        registry.sheets.append(
            RegistrySheet(name=sheet.title, header=header, header_line=header_line, rows=data)
        )
    if not registry.sheets:
        raise ImportFileError(_("{file}: the file has no header row (it is empty)", file=where))
    return registry


def _sample(path: Path) -> bytes:
    check_regular_file(path)
    try:
        with path.open("rb") as handle:
            return handle.read(SAMPLE_BYTES)
    except OSError as exc:
        raise ImportFileError(
            _("{file}: cannot be read ({reason})", file=path.name, reason=exc.strerror or str(exc))
        ) from None


def file_format(sample: bytes) -> str:
    """'xlsx', 'xls' or 'text', from the first bytes of a file."""
    if sample.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return "xlsx"
    if sample.startswith(OLE2_MAGIC):
        return "xls"
    return "text"


@contextmanager
def open_registry_file(path: Path) -> Iterator[RegistryFile]:
    """Opens a registry file for streaming, its format told by its content; each table's header is read."""
    sample = _sample(path)
    kind = file_format(sample)
    if kind == "xls":
        raise ImportFileError(
            _(
                "{file}: old .xls workbooks (Excel 97-2003) are not read; "
                "open it in Excel or WPS and save it as .xlsx or CSV",
                file=path.name,
            )
        )
    with ExitStack() as stack:
        if kind == "xlsx":
            handle = stack.enter_context(path.open("rb"))
            registry = _workbook(path, handle, stack)
        else:
            registry = _text_file(path, sample, stack)
        yield registry


def estimate_rows(path: Path) -> int | None:
    """Roughly how many data rows a file holds, for a progress bar; None when it cannot tell cheaply."""
    try:
        sample = _sample(path)
    except ImportFileError:
        return None  # the import itself reports what is wrong
    kind = file_format(sample)
    if kind == "xlsx":
        return _estimate_workbook_rows(path)
    if kind != "text":
        return None
    lines = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
    return max(0, lines - 1)


def _estimate_workbook_rows(path: Path) -> int | None:
    """The data rows the sheets of a workbook declare (its <dimension>), checked for bombs first."""
    import openpyxl

    try:
        with path.open("rb") as handle:
            with zipfile.ZipFile(handle) as archive:
                check_workbook_parts(archive, path.name)
            handle.seek(0)
            book = openpyxl.load_workbook(handle, read_only=True)
            try:
                rows = sum(min(sheet.max_row or 0, MAX_SHEET_ROWS) for sheet in book.worksheets)
            finally:
                book.close()
    except Exception:  # an estimate only; the import itself reports what is wrong
        return None
    return max(0, rows - 1) if rows else None
