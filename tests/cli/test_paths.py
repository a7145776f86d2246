"""Output paths on the command line: a file where a folder is expected, a folder where a file is expected, a
missing parent, a name too long — one line, exit code 2, before any work is done."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from outreach.cli import main


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: Any) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["outreach", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), out + err


def _cases(tmp: Path) -> list[tuple[list[str], str]]:
    a_file = tmp / "a-file.txt"
    a_file.write_text("x")
    long_name = "名" * 100 + ".pdf"  # 300 bytes in UTF-8
    return [
        (["ledger", "statement", "俏佳人", "--pdf", str(tmp)], "是文件夹，请给出文件名"),
        (["ledger", "statement", "俏佳人", "--csv", str(tmp / "no" / "such" / "s.csv")], "不存在"),
        (["ledger", "statement", "俏佳人", "--pdf", str(tmp / long_name)], "太长"),
        (["demo", "--out", str(a_file)], "是文件，请给出文件夹"),
        (["demo", "--out", str(a_file / "sub")], "无法创建文件夹"),
        (["registry", "template", str(tmp)], "是文件夹，请给出文件名"),
        (["registry", "import", str(a_file), "--rejects", str(tmp / "x" / "r.csv")], "不存在"),
        (["registry", "sample", "--size", "5", "--out", str(tmp)], "是文件夹"),
        (["proof", "qiaojiaren", "--sample", "1", "--out", str(a_file)], "是文件，请给出文件夹"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_bad_output_paths_are_one_line_and_exit_2(
    case: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    argv, expected = _cases(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, text = _run(argv, monkeypatch, capsys)
    assert code == 2
    assert expected in text
    assert "Traceback" not in text
    assert text.strip().count("\n") == 0, text
    assert sorted(p.name for p in tmp_path.iterdir()) == before
