"""Hostile and odd registry files through `outreach registry import`: a clear message, the exit code, nothing
stored changed, and bounded time. The files are made by benchmarks/bench_hostile.py (smaller here)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from audiences.importer import import_registry
from audiences.models import RegistryImport, Unit, Worker
from audiences.sample import write_sample
from outreach import db
from outreach.cli import main
from outreach.db import session_scope
from outreach.i18n import use_language

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_hostile", ROOT / "benchmarks" / "bench_hostile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hostile = _bench()
Snapshot = tuple[int, int, list[tuple[Any, ...]]]


@pytest.fixture
def stored(committed_engine: Engine, tmp_path: Path) -> Iterator[Callable[[], Snapshot]]:
    """A registry already stored, and a function that snapshots everything stored about it."""
    before = tmp_path / "before.csv"
    write_sample(before, workers=40, seed=2)
    with session_scope(committed_engine) as session:
        import_registry(session=session, path=before)

    def snapshot() -> Snapshot:
        with session_scope(committed_engine) as session:
            units = int(session.scalar(select(func.count()).select_from(Unit)) or 0)
            imports = int(session.scalar(select(func.count()).select_from(RegistryImport)) or 0)
            workers = [
                tuple(r) for r in session.execute(select(Worker.id, Worker.row_hash).order_by(Worker.id))
            ]
        return units, imports, workers

    yield snapshot
    db.get_engine().dispose()


def _import(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, float]:
    """Runs `outreach registry import` as the installed command does; (exit code, output, seconds)."""
    monkeypatch.setattr(sys, "argv", ["outreach", "registry", "import", str(path), *extra])
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main()
    seconds = time.perf_counter() - started
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), out + err, seconds


def _refused(
    path: Path,
    stored: Callable[[], Snapshot],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[str, float]:
    """Imports a file that must be refused: exit 1, one message without a traceback, nothing changed."""
    before = stored()
    code, text, seconds = _import(path, monkeypatch, capsys)
    assert code == 1, text
    assert "Traceback" not in text
    assert text.strip().count("\n") == 0, text
    assert stored() == before
    return text, seconds


def test_zip_bomb_is_refused_before_it_is_unpacked(
    stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = hostile.make_zip_bomb(tmp_path / "bomb.xlsx", cell_mb=64)
    assert path.stat().st_size < 200_000
    text, seconds = _refused(path, stored, monkeypatch, capsys)
    assert "bomb.xlsx：工作簿部件 xl/worksheets/sheet1.xml" in text and "解压为 64 MB" in text
    assert "压缩炸弹" in text
    assert seconds < 5


def test_rows_with_thousands_of_cells_import_in_linear_time(
    stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # 2,000 rows of 2,000 filled cells beyond the header: quadratic handling took minutes on this.
    path = hostile.make_wide_csv(tmp_path / "wide.csv", cells=2000, rows=2000)
    code, text, seconds = _import(path, monkeypatch, capsys, "--json")
    assert code == 0, text
    assert seconds < 20
    unknown = json.loads(text)["unknown_columns"]
    assert unknown[0] == "第 9 列（无表头）" and unknown[-1] == "另有 1990 列无表头" and len(unknown) == 11
    _units, _imports, workers = stored()
    assert len(workers) == 40 + 2000


def test_a_worksheet_claiming_every_column_and_row_is_read_as_it_is(
    stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = hostile.make_wide_xlsx(tmp_path / "wide.xlsx", rows=500)
    code, text, seconds = _import(path, monkeypatch, capsys)
    assert code == 0, text
    assert seconds < 10
    assert len(stored()[2]) == 40 + 500


def test_every_sheet_with_registry_headers_is_imported_and_the_others_named(
    stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = hostile.make_sheets(tmp_path / "sheets.xlsx", rows=30)
    code, text, _seconds = _import(path, monkeypatch, capsys)
    assert code == 0, text
    assert "已导入的工作表：第一批, 第二批" in text
    assert "未导入的工作表（没有名册表头）：说明" in text
    assert len(stored()[2]) == 40 + 60


def test_a_sheet_with_registry_columns_but_no_unit_refuses_the_file_naming_it(
    stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = tmp_path / "sheets.xlsx"
    hostile._workbook(
        path,
        {
            "职工名册": [hostile.HEADER, hostile._row(1)],
            "补录": [["姓名", "性别"], ["林秀英", "女"]],
        },
    )
    text, _seconds = _refused(path, stored, monkeypatch, capsys)
    assert "sheets.xlsx，工作表“补录”：表头行没有单位名称列" in text


@pytest.mark.parametrize(
    ("maker", "detail"),
    [("make_bad_xml", "not well-formed"), ("make_broken_styles", "")],
    ids=["invalid-xml-character", "broken-styles"],
)
def test_a_damaged_workbook_is_a_clear_error(
    maker: str,
    detail: str,
    stored: Callable[[], Snapshot],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    path = getattr(hostile, maker)(tmp_path / "damaged.xlsx")
    text, _seconds = _refused(path, stored, monkeypatch, capsys)
    assert "damaged.xlsx" in text and "工作簿已损坏" in text and "请在 Excel 或 WPS 中打开后重新保存" in text
    assert detail in text


def test_a_nul_far_down_rejects_its_row_naming_line_and_column(
    stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = hostile.make_late_nul(tmp_path / "nul.csv", rows=8000)
    assert path.read_bytes().index(b"\x00") > 256 * 1024
    rejects = tmp_path / "rejects.csv"
    code, text, _seconds = _import(path, monkeypatch, capsys, "--rejects", str(rejects))
    assert code == 0, text
    assert "第 8000 行，姓名：含有 NUL 字符" in text
    assert len(stored()[2]) == 40 + 7999
    written = rejects.read_text(encoding="utf-8-sig")
    assert "\x00" not in written and "王\ufffd芳" in written


def test_a_stray_nul_in_the_first_rows_is_a_rejected_row_not_a_binary_file(
    session: Any, tmp_path: Path
) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "姓名,性别,单位名称\n王\x00芳,女,尤溪县第一中学\n林秀英,女,尤溪县第一中学\n", encoding="utf-8"
    )
    summary = import_registry(session=session, path=path)
    assert (summary.inserted, summary.rejected) == (1, 1)
    assert summary.rejections[0].column == "姓名" and summary.rejections[0].line == 2


@pytest.mark.parametrize("kind", ["device", "pipe"])
def test_what_is_not_a_regular_file_is_refused_at_once(
    kind: str, stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    if kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "pipe.csv"
        os.mkfifo(path)
    text, seconds = _refused(path, stored, monkeypatch, capsys)
    assert f"{path.name}：不是普通文件（而是设备、管道或文件夹）" in text
    assert seconds < 5


def test_a_utf16_unicode_text_export_is_read(
    stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = hostile.make_utf16(tmp_path / "unicode.txt", rows=300)
    code, text, _seconds = _import(path, monkeypatch, capsys, "--json")
    assert code == 0, text
    summary = json.loads(text)
    assert (summary["encoding"], summary["inserted"], summary["rejected"]) == ("utf-16", 300, 0)
    assert len(stored()[2]) == 40 + 300


def test_an_xlsx_named_xls_is_imported_and_an_old_xls_is_refused_with_what_to_do(
    stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    named_xls = tmp_path / "registry.xls"
    write_sample(tmp_path / "registry.xlsx", workers=20, seed=11)
    (tmp_path / "registry.xlsx").rename(named_xls)
    code, text, _seconds = _import(named_xls, monkeypatch, capsys, "--json")
    assert code == 0, text
    summary = json.loads(text)
    assert (summary["format"], summary["rows"], summary["rejected"]) == ("xlsx", 20, 0)
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096))
    text, _seconds = _refused(old, stored, monkeypatch, capsys)
    assert "old.xls：不能读取旧版 .xls 工作簿" in text and "另存为 .xlsx 或 CSV" in text


def test_messages_are_english_when_asked(
    stored: Callable[[], Snapshot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = hostile.make_zip_bomb(tmp_path / "bomb.xlsx", cell_mb=8)
    with use_language("en"):
        text, _seconds = _refused(path, stored, monkeypatch, capsys)
    assert "error: bomb.xlsx: the workbook part xl/worksheets/sheet1.xml unpacks to 8 MB" in text
