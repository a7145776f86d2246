"""Usage mistakes (a missing file or option, a misspelt option or command) as one clear line, exit code 2.

Typer raises Click's exceptions, from `click` or from the copy of Click it carries (`typer._click`),
depending on its version; both are recognised here, so no version within the pinned range prints a traceback.
The help screens' own words (panel titles, "[required]", the --help line) are put in the catalogue's language.
"""

from __future__ import annotations

import difflib
import importlib
import re
from typing import Any

from outreach.i18n import _

USAGE_EXIT = 2

_MODULES = ("click.exceptions", "typer._click.exceptions")
_FILE_MISSING = re.compile(r"^(?:file|directory|path) '(?P<name>.+)' does not exist\.?$", re.IGNORECASE)
_IS_DIR = re.compile(r"^file '(?P<name>.+)' is a directory\.?$", re.IGNORECASE)
_IS_FILE = re.compile(r"^directory '(?P<name>.+)' is a file\.?$", re.IGNORECASE)
_NOT_INT = re.compile(r"^'(?P<value>.*)' is not a valid integer(?: range)?\.?$", re.IGNORECASE)
_NOT_FLOAT = re.compile(r"^'(?P<value>.*)' is not a valid float(?: range)?\.?$", re.IGNORECASE)
_NOT_CHOICE = re.compile(r"^'(?P<value>.*)' is not one of (?P<choices>.+)\.?$", re.IGNORECASE)
_NO_COMMAND = re.compile(r"^No such command '(?P<name>[^']*)'")


def _classes(name: str) -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for module in _MODULES:
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def is_usage_error(exc: BaseException) -> bool:
    """Whether `exc` is Click's (or Typer's copy of Click's) UsageError or FileError."""
    return isinstance(exc, _classes("UsageError") + _classes("FileError"))


def is_no_args_help(exc: BaseException) -> bool:
    """Whether `exc` only means 'a group was called without a command' (help was shown)."""
    return isinstance(exc, _classes("NoArgsIsHelpError"))


def _param_name(param: Any) -> str:
    if param is None:
        return "?"
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    if getattr(param, "param_type_name", "") == "option" and opts:
        return str(opts[0])
    return str(getattr(param, "human_readable_name", None) or getattr(param, "name", "?")).upper()


def _reason(text: str) -> str:
    text = text.strip()
    if m := _FILE_MISSING.match(text):
        return _("'{name}' does not exist", name=m["name"])
    if m := _IS_DIR.match(text):
        return _("'{name}' is a folder, not a file", name=m["name"])
    if m := _IS_FILE.match(text):
        return _("'{name}' is a file, not a folder", name=m["name"])
    if m := _NOT_INT.match(text):
        return _("'{value}' is not a whole number", value=m["value"])
    if m := _NOT_FLOAT.match(text):
        return _("'{value}' is not a number", value=m["value"])
    if m := _NOT_CHOICE.match(text):
        return _("'{value}' is not one of {choices}", value=m["value"], choices=m["choices"].rstrip("."))
    return text


def _commands(ctx: Any) -> list[str]:
    command = getattr(ctx, "command", None)
    lister = getattr(command, "list_commands", None)
    return sorted(lister(ctx)) if lister is not None else []


def usage_message(exc: BaseException) -> str:
    """One line in the catalogue's language saying what was wrong with the command line."""
    ctx = getattr(exc, "ctx", None)
    name = type(exc).__name__
    if name == "NoSuchOption":
        message = _("no such option: {option}", option=getattr(exc, "option_name", "?"))
        possible = sorted(getattr(exc, "possibilities", None) or [])
        if possible:
            message += _("; did you mean {options}?", options=" / ".join(possible))
    elif name == "MissingParameter":
        message = _("missing {name}", name=_param_name(getattr(exc, "param", None)))
    elif name == "BadParameter":
        message = _(
            "invalid {name}: {reason}",
            name=_param_name(getattr(exc, "param", None)),
            reason=_reason(str(getattr(exc, "message", exc))),
        )
    elif name == "FileError":
        message = _(
            "cannot open '{name}': {reason}",
            name=getattr(exc, "ui_filename", "?"),
            reason=str(getattr(exc, "message", "")),
        )
    elif m := _NO_COMMAND.match(str(getattr(exc, "message", ""))):
        message = _("no such command: {name}", name=m["name"])
        close = difflib.get_close_matches(m["name"], _commands(ctx), n=3, cutoff=0.5)
        if close:
            message += _("; did you mean {options}?", options=" / ".join(close))
    else:
        message = _reason(str(getattr(exc, "message", exc)))
    path = getattr(ctx, "command_path", None)
    if path:
        message += _(" (see '{command} --help')", command=path)
    return message


def localise_help() -> None:
    """Puts the words of Typer's help screens in the catalogue's language (where this Typer has them)."""
    try:
        from typer import rich_utils
    except ImportError:  # pragma: no cover - Typer without Rich help
        return
    words = {
        "ARGUMENTS_PANEL_TITLE": _("Arguments"),
        "OPTIONS_PANEL_TITLE": _("Options"),
        "COMMANDS_PANEL_TITLE": _("Commands"),
        "ERRORS_PANEL_TITLE": _("Error"),
        "REQUIRED_LONG_STRING": _("[required]"),
        "DEFAULT_STRING": _("[default: {}]"),
        "ABORTED_TEXT": _("Aborted."),
    }
    for attr, text in words.items():
        if hasattr(rich_utils, attr):
            setattr(rich_utils, attr, text)
    _localise_help_option()
    _localise_usage_prefix()
    _hide_flag_types()


def _localise_usage_prefix() -> None:
    for module in ("click.formatting", "typer._click.formatting"):
        try:
            formatter_cls = importlib.import_module(module).HelpFormatter
        except (ImportError, AttributeError):
            continue
        original = formatter_cls.write_usage
        if getattr(original, "_outreach", False):
            continue

        def write_usage(
            self: Any, prog: str, args: str = "", prefix: str | None = None, _original: Any = original
        ) -> None:
            _original(self, prog, args, _("Usage: ") if prefix is None else prefix)

        write_usage._outreach = True  # type: ignore[attr-defined]
        formatter_cls.write_usage = write_usage


def _localise_help_option() -> None:
    # The --help line's text is fixed in Click; set it on each command's help option once it is made.
    for module in ("click.core", "typer._click.core"):
        try:
            command_cls = importlib.import_module(module).Command
        except (ImportError, AttributeError):
            continue
        original = command_cls.get_help_option
        if getattr(original, "_outreach", False):
            continue

        def get_help_option(self: Any, ctx: Any, _original: Any = original) -> Any:
            option = _original(self, ctx)
            if option is not None:
                option.help = _("Show this help and exit.")
            return option

        get_help_option._outreach = True  # type: ignore[attr-defined]
        command_cls.get_help_option = get_help_option


def _hide_flag_types() -> None:
    # A flag takes no value, so "<bool>" beside it (and beside --help) only puzzles people.
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover
        return
    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_outreach", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else original(self, ctx)  # type: ignore[no-any-return]

    display_type_rich._outreach = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
