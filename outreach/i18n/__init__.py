"""The message catalogue shared by the CLI and the web pages: Simplified Chinese by default, or English.

Messages are written in English in the code as `_("...")` (or marked `N_("...")` where they are defined before
they are shown, such as state names) and translated when shown. The zh_CN translations are the gettext PO
files in `outreach/i18n/zh_CN/` (one file per area), read together by Babel as one catalogue. The language
comes from `OUTREACH_LANG` (`zh_CN`, the default, or `en`); the web service sets it per request with
`use_language`. Placeholders are `str.format` fields: `_("run {run} is {state}", run=3, state=...)`.
`tests/test_i18n.py` extracts every message from the code and fails on one without a translation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

CATALOGUE_DIR = Path(__file__).parent
DEFAULT_LANGUAGE = "zh_CN"
LANGUAGES = ("zh_CN", "en")

_override: ContextVar[str | None] = ContextVar("outreach_language", default=None)


def normalise_language(value: str | None) -> str:
    """Maps what people write ('zh', 'zh-CN', 'en_US.UTF-8', '') to one of LANGUAGES."""
    text = (value or "").strip().split(".")[0].replace("-", "_").lower()
    if text.startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE


def current_language() -> str:
    """The language messages are shown in now: a per-request override, else the settings."""
    forced = _override.get()
    if forced is not None:
        return forced
    from outreach.settings import get_settings

    return normalise_language(get_settings().lang)


@contextlib.contextmanager
def use_language(language: str) -> Iterator[None]:
    """Shows messages in `language` inside the block (the web service sets one per request)."""
    token = _override.set(normalise_language(language))
    try:
        yield
    finally:
        _override.reset(token)


@lru_cache(maxsize=4)
def catalogue(language: str) -> dict[str, str]:
    """The translations of one language: msgid -> text (empty for English, whose msgids are the text)."""
    folder = CATALOGUE_DIR / language
    table: dict[str, str] = {}
    if not folder.is_dir():
        return table
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale=language):
                if message.id and isinstance(message.id, str) and message.string:
                    table[message.id] = str(message.string)
    return table


def _(message: str, /, **fields: Any) -> str:
    """Translates `message` into the current language and fills its `{fields}`."""
    text = catalogue(current_language()).get(message, message)
    return text.format(**fields) if fields else text


def N_(message: str, /) -> str:
    """Marks a message for the catalogue without translating it yet (translate with `_` when shown)."""
    return message


def translate(message: str, /, **fields: Any) -> str:
    """Translates a message held in a variable (one marked with N_)."""
    return _(message, **fields)
