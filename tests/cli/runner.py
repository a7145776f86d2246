"""Runs `outreach ...` through the real entry point inside a test, as a shell would."""

from __future__ import annotations

import sys

import pytest

from outreach.cli import main


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """`outreach ARGS...`: its exit code and what it printed (stdout then stderr)."""
    monkeypatch.setattr(sys, "argv", ["outreach", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), out + err
