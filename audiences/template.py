"""The blank registry sheet: Chinese headers, drop-down lists, and a sheet explaining each column."""

from __future__ import annotations

from pathlib import Path

from audiences.columns import ALL_COLUMNS, UNIT_COLUMNS, YES_NO_COLUMNS
from audiences.models import UNIT_KINDS

# Rows that carry drop-down validation; a planner rarely fills more in one sheet.
VALIDATED_ROWS = 20000
# The header of the sheet explaining each column; an import passes over that sheet without a word.
ABOUT_HEADER = ["列名", "英文列名", "说明", "可填写的值"]


def write_template(path: Path) -> None:
    """Writes the blank template workbook to `path`."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "职工名册"
    sheet.append([c.header for c in ALL_COLUMNS])
    sheet.freeze_panes = "A2"
    unit_fill = PatternFill("solid", fgColor="FFF2CC")
    for index, column in enumerate(ALL_COLUMNS, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font = Font(bold=True)
        if column in UNIT_COLUMNS:
            cell.fill = unit_fill
        sheet.column_dimensions[get_column_letter(index)].width = max(10, 2 * len(column.header) + 4)
    lists = {"gender": "女,男", "unit_kind": ",".join(UNIT_KINDS)} | {
        name: "是,否" for name in YES_NO_COLUMNS
    }
    for index, column in enumerate(ALL_COLUMNS, start=1):
        allowed = lists.get(column.name)
        if allowed is None:
            continue
        validation = DataValidation(
            type="list",
            formula1=f'"{allowed}"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=column.header,
            error=f"请选择：{allowed.replace(',', '/')}",
        )
        letter = get_column_letter(index)
        validation.add(f"{letter}2:{letter}{VALIDATED_ROWS + 1}")
        sheet.add_data_validation(validation)
    # Mobiles, postcodes and credit codes are text: as numbers Excel drops leading zeros or rounds them.
    text_columns = {"worker_no", "mobile", "home_postcode", "unit_code", "unit_postcode"}
    for index, column in enumerate(ALL_COLUMNS, start=1):
        if column.name in text_columns:
            sheet.column_dimensions[get_column_letter(index)].number_format = "@"

    about = book.create_sheet("填写说明")
    about.append(ABOUT_HEADER)
    for cell in about[1]:
        cell.font = Font(bold=True)
    for column in ALL_COLUMNS:
        about.append([column.header, column.name, column.about, column.allowed])
    about.append([])
    about.append(["", "", "每行一名职工，单位信息写在同一行；只有单位列的表格作为单位名录导入。", ""])
    about.append(["", "", "繁体列名（如 性別、單位名稱）和英文列名同样可以识别。", ""])
    for letter, width in zip("ABCD", (18, 16, 44, 44), strict=True):
        about.column_dimensions[letter].width = width
    book.save(path)
