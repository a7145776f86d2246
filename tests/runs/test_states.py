"""Batch states as print-shop staff type them, and states shown in words."""

from __future__ import annotations

import pytest

from outreach.errors import InputError
from outreach.i18n import use_language
from outreach.runs.states import batch_state_label, parse_batch_state, run_state_label


@pytest.mark.parametrize(
    ("typed", "state"),
    [
        ("mailed", "mailed"),
        (" Printed ", "printed"),
        ("已下载", "downloaded"),
        ("已印刷", "printed"),
        ("已印制", "printed"),
        ("已寄出", "mailed"),
        ("已交寄", "mailed"),
        ("寄出", "mailed"),
    ],
)
def test_batch_states_typed_in_chinese_or_english(typed: str, state: str) -> None:
    assert parse_batch_state(typed) == state


def test_returned_points_at_the_returns_command() -> None:
    with pytest.raises(InputError, match="outreach batch returned"):
        parse_batch_state("退回")


def test_an_unknown_state_names_the_ones_there_are() -> None:
    with pytest.raises(InputError, match="已下载、已印制、已交寄"):
        parse_batch_state("印好了")


def test_labels_in_chinese_and_english() -> None:
    assert batch_state_label("mailed") == "已交寄"
    assert run_state_label("stalled").startswith("已停滞")
    with use_language("en"):
        assert parse_batch_state("mailed") == "mailed"
        assert run_state_label("done").startswith("done")
