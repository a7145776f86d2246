"""Privacy helpers shared by logs, previews and the CLI (PIPL: mobiles never shown whole)."""

from __future__ import annotations


def mask_mobile(mobile: str | None) -> str:
    """A mobile with its middle hidden: 13812345678 -> 138****5678; empty for none."""
    if not mobile:
        return ""
    if len(mobile) >= 11:
        return f"{mobile[:3]}{'*' * (len(mobile) - 7)}{mobile[-4:]}"
    # A short or malformed number: show only its last two digits so it still cannot be read back.
    return "*" * max(len(mobile) - 2, 0) + mobile[-2:]


def mask_name(name: str | None) -> str:
    """A name with all but its first character hidden: 王小红 -> 王**; empty for none."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)
