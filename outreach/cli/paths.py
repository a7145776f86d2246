"""Output paths given on the command line, checked before any work: a usage mistake is one line and exit 2.

Use as a Typer callback: `typer.Option(..., callback=output_file)` for a file to write,
`callback=output_folder` for a folder to write into (made if missing, with its parents).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import typer

from outreach.i18n import _

# Most file systems limit one name to 255 bytes; a longer one fails only when the file is opened.
_NAME_MAX = 255


def _check_names(path: Path) -> None:
    for part in path.parts:
        if len(os.fsencode(part)) > _NAME_MAX:
            raise typer.BadParameter(_("the name '{name}…' is too long", name=part[:20]))


def output_file(path: Path | None) -> Path | None:
    """A file we may write: not a folder, in a folder that exists and is writable."""
    if path is None:
        return None
    _check_names(path)
    if path.is_dir():
        raise typer.BadParameter(_("'{path}' is a folder; give a file name", path=path))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise typer.BadParameter(_("the folder '{path}' does not exist", path=parent))
    if not parent.is_dir():
        raise typer.BadParameter(_("'{path}' is a file, not a folder", path=parent))
    if not os.access(parent, os.W_OK):
        raise typer.BadParameter(_("cannot write into the folder '{path}'", path=parent))
    return path


def output_folder(path: Path | None) -> Path | None:
    """A folder we may write into: made if missing; refused if it is a file or cannot be made."""
    if path is None:
        return None
    _check_names(path)
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(_("'{path}' is a file; give a folder", path=path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            reason = _("a part of the path is a file, not a folder")
        else:
            reason = exc.strerror or str(exc)
        raise typer.BadParameter(
            _("cannot make the folder '{path}': {reason}", path=path, reason=reason)
        ) from None
    if not os.access(path, os.W_OK):
        raise typer.BadParameter(_("cannot write into the folder '{path}'", path=path))
    return path
