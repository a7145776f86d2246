"""Reading registry files: encodings detected, XLSX streamed, unreadable files refused clearly."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from audiences.reader import detect_encoding, open_registry_file
from audiences.sample import header_row, write_sample
from outreach.errors import ImportFileError

ROWS = "姓名,性别,单位名称\n王芳,女,尤溪县第一中学\n林秀英,女,尤溪县人民医院\n"


def _read(path: Path) -> tuple[str | None, list[str], list[tuple[int, list[str]]]]:
    with open_registry_file(path) as registry:
        (sheet,) = registry.sheets
        return registry.encoding, sheet.header, list(sheet.rows)


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gbk"), ("gb18030", "gbk")],
)
def test_simplified_encodings(tmp_path: Path, encoding: str, expected: str) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(ROWS.encode(encoding))
    found, header, rows = _read(path)
    assert found == expected
    assert header == ["姓名", "性别", "单位名称"]
    assert rows == [(2, ["王芳", "女", "尤溪县第一中学"]), (3, ["林秀英", "女", "尤溪县人民医院"])]


def test_gb18030_with_characters_beyond_gbk(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    # 䶮 (U+4DAE, a rare name character) takes four bytes in GB18030 and does not exist in GBK.
    path.write_bytes((ROWS + "刘䶮,男,尤溪县财政局\n").encode("gb18030"))
    found, _, rows = _read(path)
    assert found == "gb18030"
    assert rows[-1] == (4, ["刘䶮", "男", "尤溪县财政局"])


def test_big5_with_traditional_headers(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("姓名,性別,單位名稱\n王芳,女,尤溪縣第一中學\n陳麗華,女,尤溪縣醫院\n".encode("big5"))
    found, header, rows = _read(path)
    assert found == "big5"
    assert header == ["姓名", "性別", "單位名稱"]
    assert rows[1] == (3, ["陳麗華", "女", "尤溪縣醫院"])


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "big5"])
def test_sample_files_in_every_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / f"sample-{encoding}.csv"
    write_sample(path, workers=300, seed=5, encoding=encoding)
    found, header, rows = _read(path)
    assert found is not None and found.replace("gbk", "gb18030") == encoding.replace("gbk", "gb18030")
    assert header == header_row(traditional=encoding == "big5")
    assert len(rows) == 300


def test_latin1_text_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("name,unit\nMüller,Café Zürich\nJosé Núñez,Société Générale\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match="不是 UTF-8、UTF-16、GBK、GB18030 或 Big5 编码的文本"):
        _read(path)


def test_binary_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ImportFileError, match=r"r\.csv：不是文本文件"):
        _read(path)


@pytest.mark.parametrize("name", ["old.xls", "old.xlsx", "old.csv"])
def test_old_xls_refused_by_content_whatever_its_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(ImportFileError, match=r"不能读取旧版 \.xls 工作簿.*另存为 \.xlsx 或 CSV"):
        _read(path)


@pytest.mark.parametrize("name", ["r.xls", "r.csv", "r.txt", "r"])
def test_xlsx_read_by_content_whatever_its_name(tmp_path: Path, name: str) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "单位名称"])
    sheet.append(["王芳", "尤溪县第一中学"])
    saved = tmp_path / "saved.xlsx"
    book.save(saved)
    path = tmp_path / name
    saved.rename(path)
    found, header, rows = _read(path)
    assert (found, header, rows) == (None, ["姓名", "单位名称"], [(2, ["王芳", "尤溪县第一中学"])])


def test_csv_named_xlsx_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(ROWS.encode("gbk"))
    found, header, rows = _read(path)
    assert (found, header, len(rows)) == ("gbk", ["姓名", "性别", "单位名称"], 2)


def test_utf16_unicode_text_export(tmp_path: Path) -> None:
    # Excel's "Unicode text": UTF-16 little-endian with a byte-order mark, tab-separated, CRLF line ends.
    path = tmp_path / "r.txt"
    path.write_bytes(ROWS.replace(",", "\t").replace("\n", "\r\n").encode("utf-16"))
    found, header, rows = _read(path)
    assert found == "utf-16"
    assert header == ["姓名", "性别", "单位名称"]
    assert rows == [(2, ["王芳", "女", "尤溪县第一中学"]), (3, ["林秀英", "女", "尤溪县人民医院"])]


def test_bad_bytes_after_the_sample_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    body = ("姓名,单位名称\n" + "王芳,尤溪县第一中学\n" * 30000).encode()
    path.write_bytes(body + b"\xff\xfe,x\n")
    with pytest.raises(ImportFileError, match="第 30002 行第 1 个字节"):
        _read(path)


def test_xlsx_rows_and_cell_types(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "手机号码", "出生日期", "单位名称"])
    sheet.append(["王芳", 13812345678, __import__("datetime").date(1985, 3, 12), "尤溪县第一中学"])
    sheet.append([None, None, None, None])
    sheet.append(["林秀英", "139 1234 5678", 1990, "尤溪县人民医院"])
    book.save(path)
    found, header, rows = _read(path)
    assert found is None
    assert header == ["姓名", "手机号码", "出生日期", "单位名称"]
    assert rows == [
        (2, ["王芳", "13812345678", "1985-03-12", "尤溪县第一中学"]),
        (4, ["林秀英", "139 1234 5678", "1990", "尤溪县人民医院"]),
    ]


def test_empty_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"\n\n")
    with pytest.raises(ImportFileError, match="没有表头行"):
        _read(path)


def test_detect_encoding_short_samples() -> None:
    assert detect_encoding("章丽清,女".encode("gbk"), where="x") == "gbk"
    assert detect_encoding("陳麗華,女".encode("big5"), where="x") == "big5"
