"""The one rule for names and short texts people give (campaign names, fee names, reasons): length and
characters, checked in the service so every edge (CLI, web) gets the same clear refusal."""

from __future__ import annotations

import unicodedata

from outreach.errors import InputError
from outreach.i18n import _


def clean_name(value: object, *, what: str, max_length: int, multiline: bool = False) -> str:
    """The name stripped of outer spaces; InputError if empty, too long, or holding control characters."""
    if not isinstance(value, str):
        raise InputError(_("{what} must be text", what=what))
    text = value.strip()
    if not text:
        raise InputError(_("{what} is empty", what=what))
    if len(text) > max_length:
        raise InputError(
            _(
                "{what} {value!r} is {length} characters long; at most {limit} are allowed",
                what=what,
                value=text[:20] + "…",
                length=len(text),
                limit=max_length,
            )
        )
    for ch in text:
        if multiline and ch == "\n":
            continue
        # Cc/Cf/Co/Cn: control, format (bidi overrides), private-use and unassigned code points; Zl/Zp: line
        # and paragraph separators. None of them belongs in a name a person reads or a print shop prints.
        if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"):
            raise InputError(
                _(
                    "{what} {value!r} holds the character U+{code:04X}, which is not allowed in a name",
                    what=what,
                    value=text[:40],
                    code=ord(ch),
                )
            )
    return text
