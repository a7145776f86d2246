"""The audience query language: tokenizer, recursive-descent parser, type checker, and SQL compiler.

Grammar (keywords case-insensitive):

    expr      := and_expr ("or" and_expr)*
    and_expr  := not_expr ("and" not_expr)*
    not_expr  := "not" not_expr | "(" expr ")" | "true" | "false" | predicate
    predicate := FIELD                                    -- a yes/no field on its own
               | FIELD ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") literal
               | FIELD ["not"] "in" "(" literal ("," literal)* ")"
               | FIELD ["not"] "between" literal "and" literal
               | FIELD ["not"] "contains" STRING
               | FIELD "is" ["not"] "null"
    literal   := STRING | INTEGER | "true" | "false" | "是" | "否" | "真" | "假"

A FIELD is an English name (`unit.township`) or the registry's Chinese column name
(乡镇, 单位.乡镇, 性别); see audiences/fields.py. Full-width forms (１８, ＞＝, （）, ＇)
read as their ASCII twins, as do ≥ ≤ ≠ and the enumeration comma 、. Messages come from
the catalogue (Chinese by default) and point at the character.

Every literal reaches SQL as a bound parameter; the user's text never becomes SQL text. Missing values are
never equal to anything, and negations include them: `category != '公务员'` keeps workers with no category.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal, TypeAlias

from sqlalchemy import ColumnElement, and_, false, not_, or_, true

from audiences.fields import FIELDS, Field, FieldType, closest, lookup
from outreach.errors import QueryError
from outreach.i18n import _

# Caps so that a hostile or pasted-by-mistake string cannot exhaust memory or the stack.
MAX_LENGTH = 4000
MAX_DEPTH = 40
MAX_LIST = 1000
MAX_INT_DIGITS = 9

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "contains", "is", "null", "true", "false"})
COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})
# Marks Chinese input methods produce besides the full-width forms, read as their ASCII twins; each maps one
# character to one, so error positions stay those of the text as typed.
FOLDS = {"\u3000": " ", "、": ","}
# Mathematical signs that stand for a two-character operator.
SIGNS = {"≥": ">=", "≤": "<=", "≠": "!="}
# Curly quotes close with their partner; straight quotes close with themselves.
QUOTES = {"'": "'", '"': '"', "‘": "’", "“": "”"}
ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "’": "’", "”": "”"}
# Yes/no as the registry's sheets write them, accepted unquoted or quoted for yes/no fields.
YES_NO = {"是": True, "真": True, "否": False, "假": False}
DIGITS = frozenset("0123456789")

TokenKind: TypeAlias = Literal["ident", "keyword", "string", "int", "op", "(", ")", ",", "end"]


def fold(ch: str) -> str:
    """A character as the tokenizer reads it: full-width forms (Ａ, １, ＝, （) as ASCII, 、 as a comma."""
    code = ord(ch)
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    return FOLDS.get(ch, ch)


@dataclass(frozen=True)
class Token:
    """One token and the character offset where it starts."""

    kind: TokenKind
    value: str
    pos: int

    def describe(self) -> str:
        if self.kind == "end":
            return _("the end of the expression")
        if self.kind == "string":
            return _("text '{value}'", value=self.value)
        return f"'{self.value}'"


def tokenize(text: str) -> list[Token]:
    """Splits an expression into tokens; the last one is always 'end'."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = fold(text[i])
        if ch.isspace():
            i += 1
        elif ch in "(),":
            tokens.append(Token(ch, ch, i))  # type: ignore[arg-type]
            i += 1
        elif ch in SIGNS:
            tokens.append(Token("op", SIGNS[ch], i))
            i += 1
        elif ch in "=<>!":
            two = ch + fold(text[i + 1]) if i + 1 < n else ch
            if two in ("!=", "<>", "<=", ">="):
                tokens.append(Token("op", "!=" if two == "<>" else two, i))
                i += 2
            elif ch == "!":
                raise QueryError(
                    _("'!' must be followed by '=' (write != for 'not equal')"), text=text, position=i
                )
            else:
                tokens.append(Token("op", ch, i))
                i += 1
        elif ch in QUOTES:
            start = i
            value, i = _read_string(text, i, QUOTES[ch])
            tokens.append(Token("string", value, start))
        elif ch in DIGITS or (ch == "-" and i + 1 < n and fold(text[i + 1]) in DIGITS):
            start = i
            i += 1
            while i < n and fold(text[i]) in DIGITS:
                i += 1
            digits = "".join(fold(c) for c in text[start:i])
            if len(digits.lstrip("-")) > MAX_INT_DIGITS:
                raise QueryError(_("number too large"), text=text, position=start)
            if i < n and (fold(text[i]).isalpha() or fold(text[i]) == "_"):
                raise QueryError(_("a number cannot run into letters"), text=text, position=i)
            tokens.append(Token("int", digits, start))
        elif ch.isalpha() or ch == "_":
            # A field name in English (unit.township) or Chinese (单位.乡镇), a keyword, or 是/否.
            start = i
            while i < n and (fold(text[i]).isalnum() or fold(text[i]) in "_."):
                i += 1
            word = "".join(fold(c) for c in text[start:i])
            kind: TokenKind = "keyword" if word.lower() in KEYWORDS else "ident"
            tokens.append(Token(kind, word.lower() if kind == "keyword" else word, start))
        else:
            raise QueryError(_("unexpected character {char}", char=repr(text[i])), text=text, position=i)
    tokens.append(Token("end", "", n))
    return tokens


def _read_string(text: str, start: int, closing: str) -> tuple[str, int]:
    """Reads a quoted literal starting at `start`; returns its value and the offset after it.

    The value is kept as typed (full-width letters in a name stay full-width); only a full-width straight
    quote closes like its ASCII twin.
    """
    out: list[str] = []
    i, n = start + 1, len(text)

    def closes(ch: str) -> bool:
        return ch == closing or (closing in "'\"" and fold(ch) == closing)

    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            esc = text[i + 1]
            if esc not in ESCAPES:
                raise QueryError(_("unknown escape \\{char} in text", char=esc), text=text, position=i)
            out.append(ESCAPES[esc])
            i += 2
        elif closes(ch):
            # SQL habit: a doubled quote stands for one quote.
            if i + 1 < n and closes(text[i + 1]):
                out.append(closing)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise QueryError(_("unterminated text: no closing {quote}", quote=closing), text=text, position=start)


# --- syntax tree -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A literal as written: its type, its value and where it starts."""

    kind: Literal["text", "int", "bool"]
    value: str | int | bool
    pos: int
    # The literal as typed where it differs from the value's own spelling (是 for true).
    written: str = ""


@dataclass(frozen=True)
class Predicate:
    """A test on one field. `op` is one of OPS; `pos` points at the field, `op_pos` at the operator.

    After the checker, `field` is the canonical name and `written` the name as the planner wrote it (性别).
    """

    field: str
    pos: int
    op: str
    op_pos: int
    values: tuple[Value, ...] = ()
    written: str = ""


@dataclass(frozen=True)
class Not:
    """`not x`."""

    operand: Node
    pos: int


@dataclass(frozen=True)
class BoolOp:
    """`a and b and ...` or `a or b or ...`, flattened."""

    op: Literal["and", "or"]
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class Constant:
    """A bare `true` (everyone) or `false` (no one)."""

    value: bool
    pos: int


Node: TypeAlias = Predicate | Not | BoolOp | Constant

NEGATED = {"!=": "=", "not in": "in", "not between": "between", "not contains": "contains"}
ORDERING = frozenset({"<", "<=", ">", ">=", "between", "not between"})


# --- parser ------------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the token list; depth is capped so nesting cannot exhaust the stack."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at(self, kind: TokenKind, value: str | None = None) -> bool:
        return self.tok.kind == kind and (value is None or self.tok.value == value)

    def error(self, message: str, pos: int | None = None) -> QueryError:
        return QueryError(message, text=self.text, position=self.tok.pos if pos is None else pos)

    def expect(self, kind: TokenKind, value: str, what: str) -> Token:
        if not self.at(kind, value):
            raise self.error(_("expected {what}, found {found}", what=what, found=self.tok.describe()))
        return self.advance()

    def parse(self) -> Node:
        if self.at("end"):
            raise self.error(_("empty expression: write a condition such as gender = 'F'"), 0)
        node = self.parse_or()
        if not self.at("end"):
            raise self.error(
                _(
                    "unexpected {found} after a complete condition (missing and/or?)",
                    found=self.tok.describe(),
                )
            )
        return node

    def parse_or(self) -> Node:
        start = self.tok.pos
        items = [self.parse_and()]
        while self.at("keyword", "or"):
            self.advance()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items), start)

    def parse_and(self) -> Node:
        start = self.tok.pos
        items = [self.parse_not()]
        while self.at("keyword", "and"):
            self.advance()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items), start)

    def parse_not(self) -> Node:
        tok = self.tok
        if (tok.kind == "keyword" and tok.value == "not") or tok.kind == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(_("nested too deeply (more than {n} levels)", n=MAX_DEPTH))
            self.advance()
            if tok.kind == "(":
                node = self.parse_or()
                self.expect(")", ")", _("')' to close the '(' at character {n}", n=tok.pos + 1))
            else:
                node = Not(self.parse_not(), tok.pos)
            self.depth -= 1
            return node
        if tok.kind == "keyword" and tok.value in ("true", "false"):
            self.advance()
            return Constant(tok.value == "true", tok.pos)
        if tok.kind == "ident":
            return self.parse_predicate()
        raise self.error(_("expected a field name, found {found}", found=tok.describe()))

    def parse_predicate(self) -> Predicate:
        name = self.advance()
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            return Predicate(name.value, name.pos, tok.value, tok.pos, (self.parse_value(),))
        if tok.kind == "keyword" and tok.value == "is":
            self.advance()
            negate = self.at("keyword", "not")
            if negate:
                self.advance()
            self.expect("keyword", "null", _("null after 'is'") if not negate else _("null after 'is not'"))
            return Predicate(name.value, name.pos, "is not null" if negate else "is null", tok.pos)
        negate = tok.kind == "keyword" and tok.value == "not"
        if negate:
            self.advance()
        word = self.tok
        if word.kind == "keyword" and word.value == "in":
            self.advance()
            values = self.parse_list()
        elif word.kind == "keyword" and word.value == "between":
            self.advance()
            low = self.parse_value()
            self.expect("keyword", "and", _("'and' between the two bounds"))
            values = (low, self.parse_value())
        elif word.kind == "keyword" and word.value == "contains":
            self.advance()
            values = (self.parse_value(),)
        elif negate:
            raise self.error(
                _("expected in, between or contains after 'not', found {found}", found=word.describe())
            )
        else:
            # A field on its own: the checker makes sure it is a yes/no field.
            return Predicate(name.value, name.pos, "truth", name.pos)
        op = word.value
        return Predicate(name.value, name.pos, f"not {op}" if negate else op, tok.pos, values)

    def parse_list(self) -> tuple[Value, ...]:
        self.expect("(", "(", _("'(' to open the list of values"))
        values = [self.parse_value()]
        while self.at(","):
            self.advance()
            if len(values) >= MAX_LIST:
                raise self.error(_("too many values in one list (at most {n})", n=MAX_LIST))
            values.append(self.parse_value())
        self.expect(")", ")", _("',' or ')' in the list of values"))
        return tuple(values)

    def parse_value(self) -> Value:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return Value("text", tok.value, tok.pos)
        if tok.kind == "int":
            self.advance()
            return Value("int", int(tok.value), tok.pos)
        if tok.kind == "keyword" and tok.value in ("true", "false"):
            self.advance()
            return Value("bool", tok.value == "true", tok.pos)
        if tok.kind == "ident":
            if tok.value in YES_NO:
                self.advance()
                return Value("bool", YES_NO[tok.value], tok.pos, tok.value)
            # A Chinese value typed without quotes is the likeliest slip of all; say so.
            raise self.error(_("text values need quotes: write '{word}'", word=tok.value))
        raise self.error(_("expected a value, found {found}", found=tok.describe()))


def parse(text: str) -> Node:
    """Parses an expression into a syntax tree (no field checks yet)."""
    if len(text) > MAX_LENGTH:
        raise QueryError(
            _("expression too long (at most {n} characters)", n=MAX_LENGTH), text=text, position=MAX_LENGTH
        )
    return _Parser(text).parse()


# --- type checker ------------------------------------------------------------------------------------


def check(node: Node, text: str) -> Node:
    """Resolves field names and checks literals against their fields; returns the tree, values normalised."""
    if isinstance(node, Predicate):
        return _check_predicate(node, text)
    if isinstance(node, Not):
        return Not(check(node.operand, text), node.pos)
    if isinstance(node, BoolOp):
        return BoolOp(node.op, tuple(check(item, text) for item in node.items), node.pos)
    return node


def _check_predicate(p: Predicate, text: str) -> Predicate:
    def fail(message: str, pos: int) -> QueryError:
        return QueryError(message, text=text, position=pos)

    f = lookup(p.field)
    if f is None:
        hint = closest(p.field)
        if hint:
            raise fail(_("unknown field {name}; did you mean {hint}?", name=repr(p.field), hint=hint), p.pos)
        raise fail(
            _("unknown field {name} (`outreach audience fields` lists them)", name=repr(p.field)), p.pos
        )
    # Messages name the field as the planner wrote it (性别 or gender); the tree carries the canonical name.
    name = p.field
    op = p.op
    p = replace(p, written=name)
    if op in ("is null", "is not null"):
        return replace(p, field=f.name)
    if f.presence_only:
        raise fail(_("{field} can only be tested with `is null` or `is not null`", field=name), p.op_pos)
    if f.type is FieldType.BOOL:
        if op not in ("truth", "=", "!="):
            raise fail(
                _(
                    "{field} is a yes/no field: write `{field}`, `not {field}` or `{field} = false`",
                    field=name,
                ),
                p.op_pos,
            )
        if op == "truth":
            return replace(p, field=f.name)
        value = p.values[0]
        if value.kind == "text" and str(value.value).strip() in YES_NO:
            value = Value("bool", YES_NO[str(value.value).strip()], value.pos)
        if value.kind != "bool":
            raise fail(
                _("{field} is a yes/no field: compare it with true or false (是/否)", field=name), value.pos
            )
        return replace(p, field=f.name, values=(value,))
    if op == "truth":
        raise fail(
            _(
                "{field} is a {type} field, not yes/no: compare it with a value",
                field=name,
                type=f.type.label,
            ),
            p.pos,
        )
    if op in ORDERING and not (f.type is FieldType.INT or f.ordered):
        raise fail(_("{field} is text: use =, !=, in or contains (no ordering)", field=name), p.op_pos)
    if op in ("contains", "not contains") and (f.type is not FieldType.TEXT or f.allowed):
        raise fail(_("contains works on free text; use = or in for {field}", field=name), p.op_pos)
    values = tuple(_check_value(f, name, v, fail) for v in p.values)
    if op in ("between", "not between") and values[0].value > values[1].value:  # type: ignore[operator]
        raise fail(_("the lower bound of between is above the upper bound"), values[0].pos)
    return replace(p, field=f.name, values=values)


def _check_value(f: Field, name: str, v: Value, fail: Any) -> Value:
    if f.type is FieldType.INT:
        if v.kind != "int":
            shown = f"'{v.value}'" if v.kind == "text" else v.written or str(v.value).lower()
            raise fail(
                _(
                    "{field} is a number; {value} is not (write numbers without quotes)",
                    field=name,
                    value=shown,
                ),
                v.pos,
            )
        return v
    if v.kind != "text":
        shown = v.written or (str(v.value).lower() if v.kind == "bool" else str(v.value))
        raise fail(
            _("{field} is text: put the value in quotes, e.g. '{value}'", field=name, value=shown), v.pos
        )
    value = str(v.value)
    if f.normalise is not None:
        normalised = f.normalise(value)
        if normalised is None:
            allowed = ", ".join(f.allowed or ())
            raise fail(
                _(
                    "{field} has no value '{value}'; allowed: {allowed}",
                    field=name,
                    value=value,
                    allowed=allowed,
                ),
                v.pos,
            )
        value = normalised
    return Value("text", value, v.pos)


def validate(text: str) -> Node:
    """Parses and type-checks an expression; raises QueryError pointing at the first problem."""
    return check(parse(text), text)


def predicates(node: Node) -> list[Predicate]:
    """Every predicate of a tree, left to right."""
    if isinstance(node, Predicate):
        return [node]
    if isinstance(node, Not):
        return predicates(node.operand)
    if isinstance(node, BoolOp):
        return [p for item in node.items for p in predicates(item)]
    return []


# --- compiler ----------------------------------------------------------------------------------------


def compile_node(node: Node, *, today: date, negated: bool = False) -> ColumnElement[bool]:
    """Compiles a checked tree to a boolean SQL expression over Worker and Unit, literals bound.

    `negated` is true under a `not`: there a test on a nullable column also requires the value to be present,
    so that `not (x = v)` keeps the rows where x is missing instead of dropping them (SQL's NULL logic).
    """
    if isinstance(node, Constant):
        return true() if node.value else false()
    if isinstance(node, BoolOp):
        parts = [compile_node(item, today=today, negated=negated) for item in node.items]
        return and_(*parts) if node.op == "and" else or_(*parts)
    if isinstance(node, Not):
        return not_(compile_node(node.operand, today=today, negated=not negated))
    return _compile_predicate(node, today=today, negated=negated)


_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "in": "in", "between": "between"}


def _compile_predicate(p: Predicate, *, today: date, negated: bool) -> ColumnElement[bool]:
    f = FIELDS[p.field]
    col: Any = f.column
    if p.op == "is null":
        return col.is_(None)  # type: ignore[no-any-return]
    if p.op == "is not null":
        return col.is_not(None)  # type: ignore[no-any-return]
    if p.op in NEGATED:
        # `x != v` is `not (x = v)`: a missing value is unequal to everything.
        positive = replace(p, op=NEGATED[p.op])
        return not_(_compile_predicate(positive, today=today, negated=not negated))
    if f.type is FieldType.BOOL:
        wanted = True if p.op == "truth" else bool(p.values[0].value)
        return col.is_(wanted)  # type: ignore[no-any-return]
    op = p.op
    values: list[Any] = [v.value for v in p.values]
    if f.is_age:
        # age = year(today) - birth_year; map the bounds onto birth_year so an index on it can serve.
        values = [today.year - int(v) for v in values]
        op = _FLIPPED[op]
        if op == "between":
            values.reverse()
    expr: ColumnElement[bool]
    if op == "=":
        expr = col == values[0]
    elif op == "<":
        expr = col < values[0]
    elif op == "<=":
        expr = col <= values[0]
    elif op == ">":
        expr = col > values[0]
    elif op == ">=":
        expr = col >= values[0]
    elif op == "in":
        expr = col.in_(values)
    elif op == "between":
        expr = col.between(values[0], values[1])
    elif op == "contains":
        # autoescape turns % and _ in the value into literals; the value itself is still a bound parameter.
        expr = col.icontains(values[0], autoescape=True)
    else:  # pragma: no cover - the parser makes no other operator
        raise ValueError(f"unknown operator {op}")
    if negated and f.nullable:
        return and_(col.is_not(None), expr)
    return expr


def compile_expression(text: str, *, today: date) -> ColumnElement[bool]:
    """Parses, checks and compiles an audience expression."""
    return compile_node(validate(text), today=today)
