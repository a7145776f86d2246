"""The exceptions Outreach raises, and when to catch each.

OutreachError                 anything Outreach refuses; the CLI prints it and exits 1
├── InputError                bad input from a person; says where (file/line/column, offset, template line)
│   ├── ImportFileError       a registry file that cannot be read at all (encoding, format, headers)
│   ├── QueryError            an audience expression that does not parse or type-check
│   ├── KitError              a campaign kit that fails to load, a template that breaks, a preflight failure
│   └── GlyphError            text a piece needs that no configured font can draw
├── NotFound                  a named thing does not exist (HTTP 404)
├── Conflict                  the request clashes with stored state (HTTP 409)
│   ├── BudgetExceeded        a reservation would overspend a budget
│   └── StateError            an action not allowed in the current state (approve a cancelled campaign)
├── SchemaMissing             the database has no (or an old) schema: run `outreach db upgrade`
└── StorageError              batch-file storage failed; `kind` says how (disk_full, read_only, permission,
                              unavailable, other): retry, then stall the run naming the kind
"""

from __future__ import annotations


class OutreachError(Exception):
    """Base of every error Outreach raises on purpose."""


class InputError(OutreachError):
    """Input from a person that Outreach will not take; the message says where and why."""


class ImportFileError(InputError):
    """A registry file that cannot be read at all."""


class QueryError(InputError):
    """An audience expression that fails to parse or type-check.

    `position` is the 0-based character offset in `text`; str() shows the text with a caret under it.
    """

    def __init__(self, message: str, *, text: str, position: int) -> None:
        self.message = message
        self.text = text
        self.position = position
        super().__init__(self._render())

    def _render(self) -> str:
        line_start = self.text.rfind("\n", 0, self.position) + 1
        line_end = self.text.find("\n", self.position)
        line = self.text[line_start : line_end if line_end != -1 else len(self.text)]
        col = self.position - line_start
        # East-Asian wide characters take two terminal cells; pad the caret accordingly.
        pad = sum(2 if _is_wide(ch) else 1 for ch in line[:col])
        from outreach.i18n import _

        where = _("(at character {n})", n=self.position + 1)
        return f"{self.message} {where}\n  {line}\n  {' ' * pad}^"


def _is_wide(ch: str) -> bool:
    import unicodedata

    return unicodedata.east_asian_width(ch) in ("W", "F")


class KitError(InputError):
    """A campaign kit that cannot be used: names the kit, the file and, where known, the line."""


class GlyphError(InputError):
    """Characters that no configured font can draw, with the pieces that need them."""


class NotFound(OutreachError):
    """A named thing does not exist."""


class Conflict(OutreachError):
    """The request clashes with what is stored."""


class BudgetExceeded(Conflict):
    """A reservation would overspend a budget; says by how much."""


class StateError(Conflict):
    """An action that the thing's current state does not allow."""


class SchemaMissing(OutreachError):
    """The database schema is missing or older than this code."""


class StorageError(OutreachError):
    """Batch-file storage failed; `kind` is one of STORAGE_KINDS and says what a person must fix.

    disk_full (ENOSPC/EDQUOT), read_only (EROFS), permission (EACCES/EPERM, S3 AccessDenied),
    unavailable (the object store cannot be reached), other (anything else).
    """

    def __init__(self, message: str, *, kind: str, key: str = "") -> None:
        self.kind = kind
        self.key = key
        super().__init__(message)


STORAGE_KINDS = ("disk_full", "read_only", "permission", "unavailable", "other")
