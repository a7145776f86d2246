"""Importing registry files: counts, normalisation, rejections, idempotence, strict mode, atomicity."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audiences import importer
from audiences.importer import import_registry
from audiences.models import RegistryImport, Unit, Worker
from audiences.sample import write_sample
from outreach import db
from outreach.cli import app
from outreach.db import session_scope

HEADER = (
    "工号,姓名,性别,出生日期,职工类别,手机号码,家庭邮编,困难职工,短信同意,"
    "单位名称,统一社会信用代码,单位类型,乡镇,单位邮编"
)
UNIT = "尤溪县第一中学,12350426MB0000001X,学校,城关镇,365100"


def _csv(
    tmp_path: Path, *rows: str, header: str = HEADER, name: str = "r.csv", encoding: str = "utf-8"
) -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


def _code() -> str:
    from stdnum.cn import uscc

    base = "12350426MB0000001"
    return base + str(uscc.calc_check_digit(base))


@pytest.fixture
def unit_cells() -> str:
    return UNIT.replace("12350426MB0000001X", _code())


def _count(session: Session, model: type[Unit] | type[Worker]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_import_normalises_and_stores(session: Session, tmp_path: Path, unit_cells: str) -> None:
    path = _csv(
        tmp_path,
        f" YX01 ,王\u3000芳,女性,1985年3月12日,教師,+86 138-1234-5678,３６５１００,是,Y,{unit_cells}",
        f",林秀英,F,1990,教师,139 1234 5678,,否,0,{unit_cells}",
    )
    summary = import_registry(session=session, path=path)
    assert (summary.inserted, summary.updated, summary.unchanged, summary.rejected) == (2, 0, 0, 0)
    assert (summary.units_inserted, summary.encoding, summary.format) == (1, "utf-8", "csv")
    wang = session.scalars(select(Worker).where(Worker.worker_no == "YX01")).one()
    born = wang.birth_date.isoformat() if wang.birth_date else None
    assert (wang.name, wang.gender, wang.birth_year, born) == ("王芳", "F", 1985, "1985-03-12")
    assert (wang.category, wang.mobile, wang.home_postcode, wang.hardship, wang.consent_sms) == (
        "教师", "13812345678", "365100", True, True
    )  # fmt: skip
    lin = session.scalars(select(Worker).where(Worker.name == "林秀英")).one()
    assert lin.key == f"u:{lin.unit_id}:林秀英:13912345678"
    unit = session.get(Unit, wang.unit_id)
    assert unit is not None
    assert (unit.name, unit.kind, unit.township, unit.postcode, unit.credit_code) == (
        "尤溪县第一中学", "学校", "城关镇", "365100", _code()
    )  # fmt: skip
    record = session.get(RegistryImport, summary.import_id)
    assert record is not None and record.inserted == 2 and record.encoding == "utf-8"


def test_every_rejection_names_line_column_and_reason(
    session: Session, tmp_path: Path, unit_cells: str
) -> None:
    bad_code = unit_cells.replace(_code(), _code()[:-1] + ("1" if _code()[-1] != "1" else "2"))
    path = _csv(
        tmp_path,
        f"A1,王芳,女,1985,教师,13812345678,36510,否,是,{unit_cells}",  # line 2: 5-digit postcode
        f"A2,王芳,女,1985,教师,138123456789,,否,是,{unit_cells}",  # 3: 12-digit mobile
        f"A3,王芳,女,1985,教师,23812345678,,否,是,{unit_cells}",  # 4: mobile starting 2
        f"A4,王芳,女,1985,教师,13812345678,,否,是,{bad_code}",  # 5: credit code check digit
        f"A5,王芳,未知,1985,教师,13812345678,,否,是,{unit_cells}",  # 6: unknown gender
        f"A6,,女,1985,教师,13812345678,,否,是,{unit_cells}",  # 7: no name
        "A7,王芳,女,1985,教师,13812345678,,否,是,,,学校,城关镇,365100",  # 8: no unit
        f"A8,王芳,女,1985-02-30,教师,13812345678,,否,是,{unit_cells}",  # 9: no such date
        f"A9,王芳,女,1985,教师,13812345678,,也许,是,{unit_cells}",  # 10: not yes/no
        f"A10,王芳,,1985,教师,13812345678,,否,是,{unit_cells}",  # 11: no gender
        f"A11,王芳,女,1985,教师,13812345678,,否,是,{unit_cells.replace('学校', '公司')}",  # 12: unit kind
        f"A12,王芳,女,1985,教师,13812345678,,否,是,{unit_cells}",  # 13: fine
        f"A12,王芳,女,1985,教师,13812345678,,否,是,{unit_cells}",  # 14: same worker number again
    )
    rejects = tmp_path / "rejects.csv"
    summary = import_registry(session=session, path=path, rejects=rejects)
    found = [(r.line, r.column) for r in summary.rejections]
    assert found == [
        (2, "家庭邮编"), (3, "手机号码"), (4, "手机号码"), (5, "统一社会信用代码"), (6, "性别"), (7, "姓名"),
        (8, "单位名称"), (9, "出生日期"), (10, "困难职工"), (11, "性别"), (12, "单位类型"), (14, "工号"),
    ]  # fmt: skip
    reasons = [r.reason for r in summary.rejections]
    assert reasons[0] == "邮编“36510”不是6位数字"
    assert reasons[1] == "手机号“138123456789”不是以13–19开头的11位数字" and "校验位" in reasons[3]
    assert reasons[5] == "姓名为空" and reasons[6] == "单位名称为空" and reasons[11] == "工号与第 13 行相同"
    assert (summary.inserted, summary.rejected) == (1, 12)
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:4] == ["行号", "列", "原因", "工号"]
    assert rows[1][:3] == ["2", "家庭邮编", "邮编“36510”不是6位数字"]
    assert len(rows) == 13


def test_a_rejected_row_names_every_problem(session: Session, tmp_path: Path, unit_cells: str) -> None:
    bad_unit = unit_cells.replace("365100", "3651")
    path = _csv(
        tmp_path, f"A1,王芳,女,1985,教师,12345,,也许,是,{bad_unit}", f"A2,,,1985,教师,,,否,是,{unit_cells}"
    )
    rejects = tmp_path / "rejects.csv"
    summary = import_registry(session=session, path=path, rejects=rejects)
    assert summary.rejected == 2
    assert [(r.line, r.column, r.reason) for r in summary.rejections] == [
        (2, "手机号码", "手机号“12345”不是以13–19开头的11位数字"),
        (2, "困难职工", "“也许”不是 是/否、Y/N、1/0 之一"),
        (2, "单位邮编", "邮编“3651”不是6位数字"),
        (3, "姓名", "姓名为空"),
        (3, "性别", "性别为空"),
    ]
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 3
    assert rows[1][:3] == [
        "2",
        "手机号码；困难职工；单位邮编",
        "手机号“12345”不是以13–19开头的11位数字；“也许”不是 是/否、Y/N、1/0 之一；邮编“3651”不是6位数字",
    ]


def test_rejects_file_has_no_english_by_default_and_english_when_asked(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.csv"
    write_sample(path, workers=60, seed=8, malformed=8)
    rejects = tmp_path / "rejects.csv"
    summary = import_registry(session=session, path=path, rejects=rejects)
    assert summary.rejected == 8
    text = rejects.read_text(encoding="utf-8-sig")
    words = re.findall(r"[A-Za-z]{3,}", text)
    assert not words, words
    from outreach.i18n import use_language

    with use_language("en"):
        import_registry(session=session, path=path, rejects=rejects)
    english = rejects.read_text(encoding="utf-8-sig")
    assert english.startswith("line,column,reason,")


def test_rejects_file_is_spreadsheet_safe(session: Session, tmp_path: Path, unit_cells: str) -> None:
    path = _csv(tmp_path, f"=HYPERLINK(1),王芳,女,1985,@SUM(1),+86 1,,否,是,{unit_cells}")
    rejects = tmp_path / "rejects.csv"
    import_registry(session=session, path=path, rejects=rejects)
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        row = list(csv.reader(handle))[1]
    assert row[3] == "'=HYPERLINK(1)" and row[7] == "'@SUM(1)" and row[8] == "'+86 1"


def test_reimport_is_idempotent_then_one_change_is_one_update(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    write_sample(path, workers=400, seed=3)
    first = import_registry(session=session, path=path)
    assert (first.inserted, first.rejected, first.units_inserted) == (400, 0, 20)
    again = import_registry(session=session, path=path)
    assert (again.inserted, again.updated, again.unchanged, again.units_inserted, again.units_updated) == (
        0, 0, 400, 0, 0
    )  # fmt: skip
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[5].split(",")
    cells[4] = "白领" if cells[4] != "白领" else "教师"
    lines[5] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    changed = import_registry(session=session, path=path)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 399)
    assert _count(session, Worker) == 400


def test_changed_unit_address_is_a_unit_update(session: Session, tmp_path: Path, unit_cells: str) -> None:
    import_registry(
        session=session, path=_csv(tmp_path, f"A1,王芳,女,1985,教师,13812345678,,否,是,{unit_cells}")
    )
    moved = unit_cells.replace("365100", "365101")
    summary = import_registry(
        session=session, path=_csv(tmp_path, f"A1,王芳,女,1985,教师,13812345678,,否,是,{moved}", name="b.csv")
    )
    assert (summary.units_updated, summary.unchanged) == (1, 1)
    assert session.scalars(select(Unit.postcode)).one() == "365101"


def test_contradicting_unit_details_reject_the_later_row(
    session: Session, tmp_path: Path, unit_cells: str
) -> None:
    other = unit_cells.replace("城关镇,365100", "城关镇,365109")
    path = _csv(
        tmp_path,
        f"A1,王芳,女,1985,教师,13812345678,,否,是,{unit_cells}",
        f"A2,林芳,女,1985,教师,13812345679,,否,是,{other}",
    )
    summary = import_registry(session=session, path=path)
    assert summary.inserted == 1
    assert [(r.line, r.column) for r in summary.rejections] == [(3, "单位邮编")]
    assert summary.rejections[0].reason == "“365109”与第 2 行为该单位填写的“365100”不一致"


def test_strict_imports_nothing_when_a_row_is_rejected(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    write_sample(path, workers=200, seed=4, malformed=3)
    summary = import_registry(session=session, path=path, strict=True)
    assert not summary.applied and summary.rejected == 3 and summary.inserted == 0
    assert _count(session, Worker) == 0 and _count(session, Unit) == 0
    lenient = import_registry(session=session, path=path)
    assert (lenient.applied, lenient.inserted, lenient.rejected) == (True, 200, 3)


def test_unknown_columns_are_reported(session: Session, tmp_path: Path, unit_cells: str) -> None:
    path = _csv(
        tmp_path,
        f"A1,王芳,女,1985,教师,13812345678,,否,是,{unit_cells},会员,note",
        header=HEADER + ",政治面貌",
    )
    summary = import_registry(session=session, path=path)
    assert summary.unknown_columns == ["政治面貌", "第 16 列（无表头）"]
    assert summary.inserted == 1


def test_units_only_file(session: Session, tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        f"尤溪縣人民醫院,{_code()},事業單位,衛生,城關鎮,尤溪縣城關鎮水南路1號,365100",
        "尤溪縣西濱鎮人民政府,,機關,公共管理,西濱鎮,,365102",
        header="單位名稱,統一社會信用代碼,單位類型,行業,鄉鎮,單位地址,單位郵編",
        encoding="big5hkscs",
    )
    summary = import_registry(session=session, path=path)
    assert (summary.kind, summary.units_inserted, summary.inserted, summary.rejected) == ("units", 2, 0, 0)
    assert summary.encoding == "big5"
    kinds = {name: kind for name, kind in session.execute(select(Unit.name, Unit.kind))}
    assert kinds == {"尤溪縣人民醫院": "事业单位", "尤溪縣西濱鎮人民政府": "机关"}
    again = import_registry(session=session, path=path)
    assert (again.units_inserted, again.units_updated, again.units_unchanged) == (0, 0, 2)


def test_xlsx_import(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "s.xlsx"
    write_sample(path, workers=150, seed=9, malformed=2)
    summary = import_registry(session=session, path=path)
    assert (summary.format, summary.encoding, summary.inserted, summary.rejected) == ("xlsx", None, 150, 2)
    book = openpyxl.load_workbook(path, read_only=True)
    assert next(book.worksheets[0].iter_rows(values_only=True))[1] == "姓名"
    book.close()


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "big5", "utf-8-sig"])
def test_every_encoding_imports_the_same_registry(session: Session, tmp_path: Path, encoding: str) -> None:
    path = tmp_path / f"s-{encoding}.csv"
    write_sample(path, workers=120, seed=2, encoding=encoding)
    summary = import_registry(session=session, path=path)
    assert (summary.inserted, summary.rejected) == (120, 0)
    kinds = set(session.scalars(select(Unit.kind)))
    assert kinds <= {"企业", "事业单位", "机关", "学校", "其他"}


def test_missing_unit_column_refuses_the_file(session: Session, tmp_path: Path) -> None:
    from outreach.errors import ImportFileError

    with pytest.raises(ImportFileError, match="表头行没有单位名称列"):
        import_registry(session=session, path=_csv(tmp_path, "王芳,女", header="姓名,性别"))


def test_interrupted_import_leaves_the_registry_as_it_was(
    committed_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tmp_path / "before.csv"
    write_sample(before, workers=100, seed=6)
    with session_scope(committed_engine) as session:
        import_registry(session=session, path=before)
    bigger = tmp_path / "bigger.csv"
    write_sample(bigger, workers=900, seed=7)
    monkeypatch.setattr(importer, "CHUNK_ROWS", 100)
    chunks: list[int] = []

    def interrupt(rows: int) -> None:
        chunks.append(rows)
        if len(chunks) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), session_scope(committed_engine) as session:
        import_registry(session=session, path=bigger, progress=interrupt)
    assert chunks == [100, 200, 300]
    with session_scope(committed_engine) as session:
        assert (_count(session, Worker), _count(session, Unit)) == (100, 5)
        assert session.scalar(select(func.count()).select_from(RegistryImport)) == 1
        again = import_registry(session=session, path=before)
        assert again.unchanged == 100


@pytest.fixture
def cli_engine(committed_engine: Engine) -> Iterator[Engine]:
    """The committed engine, and afterwards closing the engine the CLI opened from the settings."""
    yield committed_engine
    db.get_engine().dispose()


def test_cli_import_json_and_strict_exit(cli_engine: Engine, tmp_path: Path) -> None:
    committed_engine = cli_engine
    path = tmp_path / "s.csv"
    runner = CliRunner()
    made = runner.invoke(
        app, ["registry", "sample", "--size", "50", "--seed", "1", "--out", str(path), "--malformed", "2"]
    )
    assert made.exit_code == 0, made.output
    strict = runner.invoke(app, ["registry", "import", str(path), "--strict", "--json"])
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["applied"] is False
    rejects = tmp_path / "rejects.csv"
    done = runner.invoke(app, ["registry", "import", str(path), "--json", "--rejects", str(rejects)])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert (result["inserted"], result["rejected"]) == (50, 2)
    assert len(rejects.read_text(encoding="utf-8-sig").splitlines()) == 3
    with session_scope(committed_engine) as session:
        assert _count(session, Worker) == 50
    table = runner.invoke(app, ["registry", "import", str(path)])
    assert table.exit_code == 0 and "未变" in table.stdout


def test_cli_template(tmp_path: Path) -> None:
    out = tmp_path / "t.xlsx"
    result = CliRunner().invoke(app, ["registry", "template", str(out)])
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    sheet = book["职工名册"]
    headers = [c.value for c in sheet[1]]
    assert headers[:3] == ["工号", "姓名", "性别"] and "统一社会信用代码" in headers
    lists = {str(v.sqref).split(":")[0][:-1]: v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists["C"] == '"女,男"' and '"企业,事业单位,机关,学校,其他"' in lists.values()
    assert book["填写说明"]["A2"].value == "工号"


def test_proof_recipients_read_like_an_import(tmp_path: Path) -> None:
    from audiences.importer import proof_recipients

    path = tmp_path / "proof.csv"
    rows = [
        "姓名,性别,手机号码,单位名称,单位地址,单位邮编",
        "王芳,女,13812345678,尤溪县第一中学,城关镇紫阳路1号,365100",
        "林建国,男性,,尤溪县人民医院,城关镇,365100",
        "陈丽,女,,尤溪县财政局",  # a short row: the missing cells are empty
        "欧阳淑英娴,女,,尤溪县西城镇人民政府,西城镇中心街道西城镇人民政府大院内办公楼三层,365101",
        "张敏,未知,12345,尤溪县第一中学,,365100",  # rejected: gender and mobile
    ]
    path.write_bytes(("\n".join(rows) + "\n").encode("gbk"))
    chosen = proof_recipients(path=path, pieces=5)
    assert chosen.rows == 5
    assert [(r.name, r.gender) for r in chosen.recipients] == [
        ("王芳", "F"), ("林建国", "M"), ("陈丽", "F"), ("欧阳淑英娴", "F")
    ]  # fmt: skip
    assert chosen.recipients[2].address is None and chosen.recipients[2].postcode is None
    assert chosen.recipients[0].mobile == "13812345678" and chosen.recipients[0].seq == 1
    assert [(r.line, r.column) for r in chosen.rejections] == [(6, "性别"), (6, "手机号码")]


def test_proof_refuses_a_units_only_file(tmp_path: Path) -> None:
    from audiences.importer import proof_recipients
    from outreach.errors import InputError

    path = _csv(tmp_path, "尤溪县第一中学,365100", header="单位名称,单位邮编")
    with pytest.raises(InputError, match="校样需要职工行"):
        proof_recipients(path=path)


def test_cli_proof_from_a_registry_file(tmp_path: Path) -> None:
    path = tmp_path / "registry.xlsx"
    write_sample(path, workers=30, seed=5, malformed=1)
    out = tmp_path / "proof"
    result = CliRunner().invoke(app, ["proof", "qiaojiaren", "--registry", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "未采用的行" in result.output and "qiaojiaren" in result.output
    assert (out / "envelopes.pdf").stat().st_size > 0 and (out / "letters.pdf").stat().st_size > 0
    assert list(out.glob("envelope*.png"))


def test_cli_proof_escapes_data_it_prints(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    path.write_text("姓名,性别,单位名称\n王[bold]芳,女,尤溪县\n林[/]芳,未知,尤溪县\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["proof", "hardship_sms", "--registry", str(path), "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 0, result.output
    assert "王[bold]芳女士" in result.output and "第 3 行，性别：性别“未知”" in result.output


def test_today_is_the_unions_date(session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "Today" comes from outreach.periods.local_date (the union's time zone), not the machine's date.
    from datetime import date

    monkeypatch.setattr(importer, "local_date", lambda: date(2000, 6, 30))
    path = _csv(tmp_path, "王芳,女,2000-07-01,尤溪县第一中学", header="姓名,性别,出生日期,单位名称")
    summary = import_registry(session=session, path=path)
    assert [r.reason for r in summary.rejections] == ["出生日期“2000-07-01”不在 1900–2000 年之间"]


def test_cli_import_escapes_data_it_prints(cli_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("姓名,性别,单位名称,[bold]备注\n王芳,[/],尤溪县第一中学,x\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["registry", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "性别“[/]”不是" in result.output and "[bold]备注" in result.output


def test_the_filled_in_template_imports_without_a_word_about_its_instructions(
    session: Session, tmp_path: Path
) -> None:
    from audiences.template import write_template

    path = tmp_path / "名址模板.xlsx"
    write_template(path)
    book = openpyxl.load_workbook(path)
    book["职工名册"].append(["A1", "王芳", "女", "1985", "", "13812345678"] + [""] * 6 + ["尤溪县第一中学"])
    book.save(path)
    summary = import_registry(session=session, path=path)
    assert (summary.inserted, summary.rejected, summary.sheets, summary.skipped_sheets) == (
        1,
        0,
        ["职工名册"],
        [],
    )


def test_rejects_of_several_sheets_name_the_sheet_under_each_sheets_header(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "two.xlsx"
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "一月"
    first.append(["姓名", "性别", "单位名称"])
    first.append(["王芳", "女", "尤溪县第一中学"])
    first.append(["", "女", "尤溪县第一中学"])
    second = book.create_sheet("二月")
    second.append(["单位名称", "姓名", "性别", "单位邮编"])
    second.append(["尤溪县人民医院", "林秀英", "未知", "3651"])
    book.save(path)
    rejects = tmp_path / "rejects.csv"
    summary = import_registry(session=session, path=path, rejects=rejects)
    assert (summary.sheets, summary.inserted, summary.rejected) == (["一月", "二月"], 1, 2)
    assert [(r.sheet, r.line, r.column) for r in summary.rejections] == [
        ("一月", 3, "姓名"), ("二月", 2, "性别"), ("二月", 2, "单位邮编")
    ]  # fmt: skip
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["工作表", "行号", "列", "原因", "姓名", "性别", "单位名称"],
        ["一月", "3", "姓名", "姓名为空", "", "女", "尤溪县第一中学"],
        ["工作表", "行号", "列", "原因", "单位名称", "姓名", "性别", "单位邮编"],
        [
            "二月", "2", "性别；单位邮编", "性别“未知”不是 女/女性/F、男/男性/M 之一；邮编“3651”不是6位数字",
            "尤溪县人民医院", "林秀英", "未知", "3651",
        ],
    ]  # fmt: skip
