"""Every command: --help works; a missing required argument and an unknown option are one line, exit 2."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from outreach.cli import app, main


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in sorted(subcommands.items()):
            yield from _leaves(sub, (*path, name))
    else:
        yield path, command


COMMANDS = list(_leaves(typer.main.get_command(app)))
IDS = [" ".join(path) for path, _ in COMMANDS]


def _run(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["outreach", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), out + err


def test_the_tree_has_the_commands_people_use() -> None:
    assert {"registry import", "campaign approve", "run start", "ledger statement"} <= set(IDS)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_help_works(
    path: tuple[str, ...], command: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code, text = _run([*path, "--help"], monkeypatch, capsys)
    assert code == 0
    assert "Traceback" not in text
    assert "用法" in text
    assert "<bool>" not in text


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_an_unknown_option_is_one_line_and_exit_2(
    path: tuple[str, ...], command: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code, text = _run([*path, "--no-such-option"], monkeypatch, capsys)
    assert code == 2
    assert "Traceback" not in text
    assert text.strip().count("\n") == 0, text
    assert "没有选项 --no-such-option" in text


REQUIRED = [(path, cmd) for path, cmd in COMMANDS if any(p.required for p in cmd.params)]


@pytest.mark.parametrize(("path", "command"), REQUIRED, ids=[" ".join(p) for p, _ in REQUIRED])
def test_a_missing_required_argument_is_one_line_and_exit_2(
    path: tuple[str, ...], command: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code, text = _run(list(path), monkeypatch, capsys)
    assert code == 2
    assert "Traceback" not in text
    assert text.strip().count("\n") == 0, text
    assert "缺少" in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["registry", "import", "nosuch.csv"], "“nosuch.csv”不存在"),
        (["campaign", "approve", "俏佳人"], "缺少 --period"),
        (["campaign", "approve", "俏佳人", "--perod", "2027-Q1"], "您是不是要输入 --period"),
        (["campain", "list"], "您是不是要输入 campaign"),
    ],
)
def test_the_mistakes_seen_by_a_new_planner(
    argv: list[str], expected: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code, text = _run(argv, monkeypatch, capsys)
    assert code == 2
    assert expected in text
    assert "Traceback" not in text


def test_english_when_asked(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from outreach.i18n import use_language

    with use_language("en"):
        code, text = _run(["campain", "list"], monkeypatch, capsys)
    assert code == 2
    assert "no such command: campain; did you mean campaign?" in text


CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_help_texts_are_chinese(path: tuple[str, ...], command: Any) -> None:
    assert CJK.search(command.help or ""), f"outreach {' '.join(path)}: {command.help!r}"
    for param in command.params:
        text = getattr(param, "help", None)
        if text and param.name != "help":
            assert CJK.search(text), f"outreach {' '.join(path)} {param.name}: {text!r}"
