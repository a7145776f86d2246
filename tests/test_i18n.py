"""The message catalogue: every message in the code has a Chinese translation with the same fields."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from outreach.i18n import CATALOGUE_DIR, _, catalogue, normalise_language, use_language

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("outreach", "audiences", "workers")


def _messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in PACKAGES:
        for filename, _lineno, message, _comments, _context in extract_from_dir(
            ROOT / package,
            method_map=[("**.py", "python")],
            keywords={"_": None, "N_": None},
        ):
            if isinstance(message, str):
                found.setdefault(message, f"{package}/{filename}")
    # The web pages' templates call the same translator: {{ _("...") }}.
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT / "outreach" / "web" / "templates",
        method_map=[("**.html", "jinja2.ext:babel_extract")],
        keywords={"_": None},
    ):
        if isinstance(message, str):
            found.setdefault(message, f"outreach/web/templates/{filename}")
    return found


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_in_the_code_has_a_chinese_translation() -> None:
    zh = catalogue("zh_CN")
    missing = {msg: where for msg, where in _messages().items() if msg not in zh}
    assert not missing, "messages without a zh_CN translation:\n" + "\n".join(
        f"  {where}: {msg!r}" for msg, where in sorted(missing.items(), key=lambda kv: kv[1])
    )


def test_translations_keep_the_fields_of_their_message() -> None:
    for msgid, text in catalogue("zh_CN").items():
        assert _fields(msgid) == _fields(text), f"{msgid!r} -> {text!r}"


def test_no_message_is_defined_twice_across_catalogue_files() -> None:
    seen: dict[str, str] = {}
    for po in sorted((CATALOGUE_DIR / "zh_CN").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh):
                if message.id:
                    assert message.id not in seen, f"{message.id!r} in {po.name} and {seen[message.id]}"
                    seen[str(message.id)] = po.name


def test_no_formatted_string_is_passed_to_the_translator() -> None:
    # _(f"...") cannot be in the catalogue: the text differs every time.
    pattern = re.compile(r"\b_\(\s*f[\"']")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders


def test_chinese_is_the_default_and_english_is_there_when_asked() -> None:
    assert _("error") == "错误"
    with use_language("en"):
        assert _("error") == "error"
    assert normalise_language("en_US.UTF-8") == "en"
    assert normalise_language("zh-CN") == "zh_CN"
    assert normalise_language(None) == "zh_CN"


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_fields_are_filled(lang: str) -> None:
    with use_language(lang):
        assert "{" not in _("error")
