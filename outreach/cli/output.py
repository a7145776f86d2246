"""Where the CLI writes, and the one rule for data that reaches the terminal.

Every value that comes from data (registry names, campaign names, file contents, reasons) goes through `safe`
before it is printed or put in a table cell: Rich markup in it is escaped (a name with `[/]` neither crashes
nor restyles the output) and control characters (terminal escape codes) are shown as `\\x1b`, not obeyed.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

# C0 controls except tab and newline, DEL, and the C1 controls (which some terminals obey as escapes).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: object) -> str:
    """The value as text with control characters made visible (for output that is not Rich markup)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def safe(value: object) -> str:
    """The value as text that Rich prints literally: markup escaped, control characters made visible."""
    return escape(plain(value))
