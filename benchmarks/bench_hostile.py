"""Hostile and odd registry files: each is made, then imported in its own process into a scratch database.

For each file it prints the outcome (the summary, or the error a planner sees), the wall time and the peak
memory of the importing process and its children (ru_maxrss); the limits are 30 s and 300 MB. The makers
are used by tests/audiences/test_hostile.py too, with smaller sizes.
Run: flock /tmp/outreach-heavy.lock .venv/bin/python benchmarks/bench_hostile.py [--sqlite] [--bomb-mb 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

HEADER = ["工号", "姓名", "性别", "出生日期", "手机号码", "单位名称", "乡镇", "单位邮编"]
ROW = ["A{n}", "王芳{n}", "女", "1985", "138{n:08d}", "尤溪县第一中学", "城关镇", "365100"]
ADMIN_URL = os.environ.get("OUTREACH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TIME_LIMIT_S = 30
MEMORY_LIMIT_MB = 300


def _row(n: int) -> list[str]:
    return [cell.format(n=n) for cell in ROW]


def _workbook(path: Path, sheets: dict[str, list[list[str]]]) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)


def _rewrite_part(path: Path, part: str, write: Callable[[zipfile.ZipFile], None]) -> None:
    """Copies the workbook at `path`, its `part` written by `write` instead."""
    copy = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename == part:
                write(target)
            else:
                target.writestr(info, source.read(info))
    copy.replace(path)


def make_zip_bomb(path: Path, *, cell_mb: int) -> Path:
    """A small .xlsx whose one sheet holds a single cell of `cell_mb` MiB (it packs about 1000:1)."""
    _workbook(path, {"职工名册": [HEADER, _row(1)]})

    def write(target: zipfile.ZipFile) -> None:
        with target.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write(
                b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                b'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
            )
            block = b"A" * (1 << 20)
            for _ in range(cell_mb):
                out.write(block)
            out.write(b"</t></is></c></row></sheetData></worksheet>")

    _rewrite_part(path, "xl/worksheets/sheet1.xml", write)
    return path


def make_wide_csv(path: Path, *, cells: int, rows: int = 2) -> Path:
    """A CSV whose rows carry `cells` filled cells beyond the header (a few kB per row)."""
    extra = ",x" * cells
    lines = [",".join(HEADER)] + [",".join(_row(n)) + extra for n in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_wide_xlsx(path: Path, *, rows: int) -> Path:
    """An .xlsx whose <dimension> claims A1:XFD1048576 and whose rows each fill column XFD (16384)."""
    body = [
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        'spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData>'
    ]
    for number, row in enumerate([HEADER] + [_row(n) for n in range(rows)], start=1):
        cells = "".join(
            f'<c r="{chr(65 + i)}{number}" t="inlineStr"><is><t>{value}</t></is></c>'
            for i, value in enumerate(row)
        )
        body.append(f'<row r="{number}">{cells}<c r="XFD{number}" t="inlineStr"><is><t>x</t></is></c></row>')
    body.append("</sheetData></worksheet>")
    _workbook(path, {"职工名册": [HEADER]})
    _rewrite_part(
        path, "xl/worksheets/sheet1.xml", lambda t: t.writestr("xl/worksheets/sheet1.xml", "".join(body))
    )
    return path


def make_sheets(path: Path, *, rows: int) -> Path:
    """A workbook with two registry sheets and a sheet of notes."""
    _workbook(
        path,
        {
            "第一批": [HEADER] + [_row(n) for n in range(rows)],
            "第二批": [HEADER] + [_row(n) for n in range(rows, 2 * rows)],
            "说明": [["填写说明"], ["每行一名职工"]],
        },
    )
    return path


def make_bad_xml(path: Path) -> Path:
    """An .xlsx whose sheet holds a character XML forbids (a raw control code)."""
    _workbook(path, {"职工名册": [HEADER, _row(1)]})
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>工号\x01</t></is>'
        "</c></row></sheetData></worksheet>"
    )
    _rewrite_part(path, "xl/worksheets/sheet1.xml", lambda t: t.writestr("xl/worksheets/sheet1.xml", xml))
    return path


def make_broken_styles(path: Path) -> Path:
    """An .xlsx whose styles part is cut off in the middle."""
    _workbook(path, {"职工名册": [HEADER, _row(1)]})
    with zipfile.ZipFile(path) as source:
        styles = source.read("xl/styles.xml")
    _rewrite_part(path, "xl/styles.xml", lambda t: t.writestr("xl/styles.xml", styles[: len(styles) // 2]))
    return path


def make_late_nul(path: Path, *, rows: int) -> Path:
    """A UTF-8 CSV with a NUL character in a name far beyond the first 256 KB."""
    lines = [",".join(HEADER)] + [",".join(_row(n)) for n in range(rows)]
    cells = lines[-2].split(",")
    cells[1] = "王\x00芳"
    lines[-2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_utf16(path: Path, *, rows: int) -> Path:
    """Excel's "Unicode text" export: UTF-16 with a byte-order mark, tab-separated, CRLF line ends."""
    lines = ["\t".join(HEADER)] + ["\t".join(_row(n)) for n in range(rows)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))
    return path


def make_cases(folder: Path, *, bomb_mb: int) -> dict[str, Path]:
    """Every hostile file, made in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        f"zip bomb (one cell of {bomb_mb} MiB)": make_zip_bomb(folder / "bomb.xlsx", cell_mb=bomb_mb),
        "wide rows, CSV (12 kB, 3000 filled cells a row)": make_wide_csv(folder / "wide.csv", cells=3000),
        "wide rows, CSV (2 MB, 1000 rows of 1000 cells)": make_wide_csv(
            folder / "wide-many.csv", cells=1000, rows=1000
        ),
        "wide rows, XLSX (XFD filled, dimension A1:XFD1048576)": make_wide_xlsx(
            folder / "wide.xlsx", rows=2000
        ),
        "several sheets": make_sheets(folder / "sheets.xlsx", rows=500),
        "invalid XML character": make_bad_xml(folder / "bad-xml.xlsx"),
        "broken styles part": make_broken_styles(folder / "styles.xlsx"),
        "NUL byte after 256 KB": make_late_nul(folder / "nul.csv", rows=20000),
        "endless device (/dev/zero)": Path("/dev/zero"),
        "UTF-16 Unicode text": make_utf16(folder / "unicode.txt", rows=20000),
    }


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def import_one(url: str, path: Path) -> dict[str, object]:
    """Imports one file into the database at `url` in this process, as `outreach registry import` does."""
    from audiences.importer import import_registry
    from outreach import db
    from outreach.errors import OutreachError

    engine = db.get_engine(url)
    started = time.perf_counter()
    try:
        with db.session_scope(engine) as session:
            summary = import_registry(session=session, path=path)
        outcome = (
            f"{summary.rows} rows: {summary.inserted} inserted, {summary.updated} updated, "
            f"{summary.unchanged} unchanged, {summary.rejected} rejected"
            + (f" ({summary.rejections[0].describe()})" if summary.rejections else "")
            + (f", sheets {summary.sheets}, skipped {summary.skipped_sheets}" if summary.sheets else "")
        )
    except OutreachError as exc:
        outcome = f"refused: {exc}"
    return {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb(), "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bomb-mb", type=int, default=1024)
    parser.add_argument("--sqlite", action="store_true", help="a scratch SQLite file instead of PostgreSQL")
    parser.add_argument("--one", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(import_one(args.one[0], Path(args.one[1])), ensure_ascii=False))
        return

    from outreach import db

    with tempfile.TemporaryDirectory(prefix="outreach-hostile-") as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        cases = make_cases(folder / "files", bomb_mb=args.bomb_mb)
        print(f"made {len(cases)} files in {time.perf_counter() - started:.1f} s")
        if args.sqlite:
            url = f"sqlite:///{folder / 'bench.db'}"
            db.upgrade(db.get_engine(url))
            _run_all(cases, url)
        else:
            with db.scratch_database(ADMIN_URL, prefix="outreach_bench_hostile") as url:
                db.upgrade(db.get_engine(url))
                db.dispose_engines()
                _run_all(cases, url)


def _run_all(cases: dict[str, Path], url: str) -> None:
    failed = []
    for name, path in cases.items():
        size = path.stat().st_size if path.is_file() else 0
        done = subprocess.run(
            [sys.executable, __file__, "--one", url, str(path)],
            capture_output=True,
            text=True,
            timeout=10 * TIME_LIMIT_S,
            check=False,
        )
        if done.returncode != 0:
            print(f"{name}: crashed (exit {done.returncode})\n{done.stderr}")
            failed.append(name)
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        seconds, peak = float(result["seconds"]), float(result["peak_mb"])
        ok = seconds < TIME_LIMIT_S and peak < MEMORY_LIMIT_MB
        if not ok:
            failed.append(name)
        outcome = str(result["outcome"]).replace("\n", " ")[:160]
        print(
            f"{'ok ' if ok else 'BAD'} {name} [{size / 1e6:.2f} MB]: {seconds:.2f} s, peak {peak:.0f} MB\n"
            f"    {outcome}"
        )
    print("all within limits" if not failed else f"over the limits: {', '.join(failed)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
