"""The kit templates' sandbox: Jinja2's immutable sandbox with bounded arithmetic, text, lists and loops.

A kit is written by union staff, not by us, so a template must never take the machine down. Jinja2 folds
constant expressions while it compiles, outside its sandbox (`{{ 10**100000000 }}` or `{{ 'x' * 10**10 }}`
take gigabytes and minutes before anything is rendered). Here every arithmetic operator is intercepted (so
Jinja2 folds none of them), the compile step evaluates constant expressions itself with the same limits as
rendering and refuses an oversized one with its line, and at render time every operator, `~`, filter, loop
and the output itself are bounded. Kits get a small set of filters and no macros.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from contextvars import ContextVar
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, nodes
from jinja2.exceptions import SecurityError, TemplateNotFound, TemplateSyntaxError
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from outreach.i18n import _

MAX_TEXT = 100_000  # characters of any text a template builds (a letter body is about 2,000)
MAX_ITEMS = 100_000  # items of any list a template builds
MAX_INT_BITS = 1024  # about 308 decimal digits
MAX_LOOP_STEPS = 100_000  # loop iterations (and items filters go through) per render, all loops together
MAX_FORMAT_WIDTH = 1_000  # widths and precisions in '%10.2f' % x

# Filters a kit may use, by Jinja2's names; the others (center, indent, format, wordwrap, batch, slice,
# tojson, random, ...) can blow up sizes or are not deterministic.
ALLOWED_FILTERS = (
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "groupby",
    "int",
    "items",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "reverse",
    "round",
    "select",
    "selectattr",
    "sort",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "unique",
    "upper",
    "wordcount",
)
# str methods a template may not call: they pad or repeat to a size given as an argument.
REFUSED_STR_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map", "join", "replace"}
)
REFUSED_NODES: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Macro, "macro"),
    (nodes.CallBlock, "call"),
    (nodes.Import, "import"),
    (nodes.FromImport, "from ... import"),
)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_UNOPS: dict[str, Callable[[Any], Any]] = {"-": operator.neg, "+": operator.pos, "not": operator.not_}

_steps: ContextVar[list[int] | None] = ContextVar("outreach_template_steps", default=None)


class LimitExceeded(SecurityError):
    """A template tried to build a number, text, list or loop beyond the sandbox's limits."""


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _sized(value: Any) -> Any:
    """Returns value, or raises when it is larger than a template may build."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise LimitExceeded(_("text of {n:,} characters (at most {max:,})", n=len(value), max=MAX_TEXT))
    elif isinstance(value, list | tuple):
        if len(value) > MAX_ITEMS:
            raise LimitExceeded(_("a list of {n:,} items (at most {max:,})", n=len(value), max=MAX_ITEMS))
    elif _is_int(value) and value.bit_length() > MAX_INT_BITS:
        raise LimitExceeded(_("a number of more than {max} bits", max=MAX_INT_BITS))
    return value


def _too_big(what: str) -> LimitExceeded:
    return LimitExceeded(_("{what} would be larger than a template may build", what=what))


def binop(op: str, left: Any, right: Any) -> Any:
    """`left op right` with the sandbox's limits checked before anything large is computed."""
    if op == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        if (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
            raise _too_big(f"{left} ** {right}")
    elif op == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and _is_int(n):
                limit = MAX_TEXT if isinstance(seq, str) else MAX_ITEMS
                if len(seq) * max(n, 0) > limit:
                    raise _too_big(f"{type(seq).__name__} * {n}")
        if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise _too_big(_("the product"))
    elif op == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        limit = MAX_TEXT if isinstance(left, str) else MAX_ITEMS
        if len(left) + len(right) > limit:
            raise _too_big(_("the sum"))
    elif op == "%" and isinstance(left, str):
        _check_percent_format(left, right)
    return _sized(_BINOPS[op](left, right))


def _check_percent_format(fmt: str, args: Any) -> None:
    for star_or_width, precision in _PERCENT_SPEC.findall(fmt):
        for part in (star_or_width, precision):
            if part == "*" or (part and int(part) > MAX_FORMAT_WIDTH):
                raise LimitExceeded(_("a '%' format width or precision over {max}", max=MAX_FORMAT_WIDTH))
    values = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
    longest = max((len(str(v)) for v in values), default=0)
    if len(fmt) + fmt.count("%") * max(longest, MAX_FORMAT_WIDTH) > MAX_TEXT:
        raise _too_big(_("the formatted text"))


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterates while charging each item to this render's loop budget."""
    budget = _steps.get()
    if budget is None:
        budget = [MAX_LOOP_STEPS]
    for item in iterable:
        budget[0] -= 1
        if budget[0] < 0:
            raise LimitExceeded(_("more than {max:,} loop steps in one rendering", max=MAX_LOOP_STEPS))
        yield item


def _loop_filter(value: Any) -> Iterator[Any]:
    return _counted(value)


def _concat_filter(parts: list[Any]) -> str:
    """`a ~ b ~ c`, bounded."""
    return bounded_concat(str(p) for p in parts)


def bounded_concat(parts: Iterable[str]) -> str:
    """Joins a template's output (and its block assignments), refusing it past MAX_TEXT characters."""
    out: list[str] = []
    n = 0
    for part in parts:
        n += len(part)
        if n > MAX_TEXT:
            raise LimitExceeded(_("text of more than {max:,} characters", max=MAX_TEXT))
        out.append(part)
    return "".join(out)


def _join_filter(value: Iterable[Any], d: str = "", attribute: str | None = None) -> str:
    items = [str(v if attribute is None else getattr(v, attribute, "")) for v in _counted(value)]
    if sum(map(len, items)) + len(d) * max(len(items) - 1, 0) > MAX_TEXT:
        raise _too_big(_("the joined text"))
    return str(d).join(items)


def _replace_filter(value: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * max(len(new) - len(old), 0) > MAX_TEXT:
        raise _too_big(_("the replaced text"))
    return text.replace(old, new, -1 if count is None else count)


def _sum_filter(iterable: Iterable[Any], attribute: str | None = None, start: int | float = 0) -> Any:
    total: Any = start
    for v in _counted(iterable):
        item = v if attribute is None else getattr(v, attribute, 0)
        if not isinstance(item, int | float) or isinstance(item, bool):
            raise LimitExceeded(_("sum adds numbers only"))
        total = binop("+", total, item)
    return total


def _charge(n: int) -> None:
    """Charges n steps to this render's loop budget."""
    budget = _steps.get()
    if budget is None:
        return
    budget[0] -= n
    if budget[0] < 0:
        raise LimitExceeded(_("more than {max:,} loop steps in one rendering", max=MAX_LOOP_STEPS))


def _bounded_filter(f: Callable[..., Any]) -> Callable[..., Any]:
    """A Jinja2 filter whose input is charged to the loop budget and whose result is size-checked."""
    value_at = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(args) > value_at:
            value = args[value_at]
            if isinstance(value, Sized):
                _charge(len(value))
            elif isinstance(value, Iterable):
                args = (*args[:value_at], _counted(value), *args[value_at + 1 :])
        return _sized(f(*args, **kwargs))

    return wrapper


def _filters() -> dict[str, Callable[..., Any]]:
    table = {name: _bounded_filter(FILTERS[name]) for name in ALLOWED_FILTERS}
    table.update(join=_join_filter, replace=_replace_filter, sum=_sum_filter)
    table["outreach_loop"] = _loop_filter
    table["outreach_concat"] = _concat_filter
    return table


class KitLoader(FileSystemLoader):
    """Loads `{% include %}`d templates from the kit folder only, refusing a symlink that points out of it."""

    def __init__(self, root: str) -> None:
        super().__init__(root, followlinks=False)
        self.root = root

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        import os

        source, filename, uptodate = super().get_source(environment, template)
        source = str(source)
        real = os.path.realpath(filename)
        root = os.path.realpath(self.root)
        if os.path.commonpath([real, root]) != root:
            raise TemplateNotFound(template, _("it lies outside the kit folder"))
        return source, filename, uptodate


class KitEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox every kit template runs in (see the module docstring)."""

    intercepted_binops = frozenset(_BINOPS)
    concat = staticmethod(bounded_concat)

    def __init__(self, root: str) -> None:
        super().__init__(
            undefined=StrictUndefined,
            loader=KitLoader(root),
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            optimized=False,
        )
        self.filters = _filters()
        self.globals = {"range": safe_range, "dict": dict}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return binop(operator, left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in REFUSED_STR_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        return None  # str.format is refused by is_safe_attribute (its widths are unbounded)

    def compile(  # type: ignore[override]
        self,
        source: str | nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        """Compiles as Jinja2 does, after refusing what the sandbox cannot bound and rewriting loops and `~`
        (also for templates pulled in by `{% include %}`)."""
        if isinstance(source, str):
            tree = self.parse(source, name, filename)
            check_tree(tree, name=name, filename=filename)
            rewrite_tree(tree, self)
            source = tree
        if raw:
            return super().compile(source, name, filename, True, defer_init)
        return super().compile(source, name, filename, False, defer_init)


class _NotConstant(Exception):
    pass


def _const(node: nodes.Node) -> Any:
    """The value of a constant expression, computed with the sandbox's limits; _NotConstant otherwise."""
    if isinstance(node, nodes.Const):
        return _sized(node.value)
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_const(n) for n in node.items]
        return items if isinstance(node, nodes.List) else tuple(items)
    if isinstance(node, nodes.BinExpr) and node.operator in _BINOPS:
        return binop(node.operator, _const(node.left), _const(node.right))
    if isinstance(node, nodes.UnaryExpr) and node.operator in _UNOPS:
        return _UNOPS[node.operator](_const(node.node))
    if isinstance(node, nodes.Concat):
        return bounded_concat(str(_const(n)) for n in node.nodes)
    raise _NotConstant


def check_tree(tree: nodes.Template, *, name: str | None = None, filename: str | None = None) -> None:
    """Refuses macros and recursive loops, and constant expressions beyond the limits, naming the line."""

    def refuse(message: str, lineno: int) -> TemplateSyntaxError:
        return TemplateSyntaxError(message, lineno, name, filename)

    for kind, word in REFUSED_NODES:
        for found in tree.find_all(kind):
            tag = "{% " + word + " %}"
            raise refuse(_("{tag} is not allowed in kit templates", tag=tag), found.lineno)
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            raise refuse(_("recursive loops are not allowed in kit templates"), loop.lineno)
    for expr in tree.find_all((nodes.BinExpr, nodes.UnaryExpr, nodes.Concat)):
        try:
            _const(expr)
        except LimitExceeded as exc:
            raise refuse(str(exc.message or exc), expr.lineno) from exc
        except (_NotConstant, ArithmeticError, TypeError, ValueError, RecursionError):
            continue  # not constant, or an error the render reports with its line


def rewrite_tree(tree: nodes.Template, environment: Any) -> None:
    """Routes every loop through the loop budget and every `~` through the bounded join."""
    for loop in list(tree.find_all(nodes.For)):
        loop.iter = nodes.Filter(loop.iter, "outreach_loop", [], [], None, None, lineno=loop.lineno)
    # Outer `~` first; their parts (which may hold more `~`) are rewritten on the next pass.
    while any(True for _n in tree.find_all(nodes.Concat)):
        for parent in list(tree.find_all(nodes.Node)):
            for field in parent.fields:
                value = getattr(parent, field, None)
                if isinstance(value, nodes.Concat):
                    setattr(parent, field, _bounded_concat_node(value))
                elif isinstance(value, list) and any(isinstance(v, nodes.Concat) for v in value):
                    setattr(
                        parent,
                        field,
                        [_bounded_concat_node(v) if isinstance(v, nodes.Concat) else v for v in value],
                    )
    tree.set_environment(environment)


def _bounded_concat_node(node: nodes.Concat) -> nodes.Filter:
    return nodes.Filter(
        nodes.List(list(node.nodes), lineno=node.lineno),
        "outreach_concat",
        [],
        [],
        None,
        None,
        lineno=node.lineno,
    )


def render(template: Template, variables: Mapping[str, Any]) -> str:
    """Renders a kit template with a fresh loop budget."""
    token = _steps.set([MAX_LOOP_STEPS])
    try:
        return template.render(variables)
    finally:
        _steps.reset(token)
