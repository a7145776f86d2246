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
    literal   := STRING | INTEGER | "true" | "false"

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

# Caps so that a hostile or pasted-by-mistake string cannot exhaust memory or the stack.
MAX_LENGTH = 4000
MAX_DEPTH = 40
MAX_LIST = 1000
MAX_INT_DIGITS = 9

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "contains", "is", "null", "true", "false"})
COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})
# Full-width punctuation that Chinese input methods produce, read as its ASCII twin.
FULL_WIDTH = {"（": "(", "）": ")", "，": ",", "＝": "=", "！": "!", "＜": "<", "＞": ">", "\u3000": " "}
# Curly quotes close with their partner; straight quotes close with themselves.
QUOTES = {"'": "'", '"': '"', "‘": "’", "“": "”"}
ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "’": "’", "”": "”"}

TokenKind: TypeAlias = Literal["ident", "keyword", "string", "int", "op", "(", ")", ",", "end"]


@dataclass(frozen=True)
class Token:
    """One token and the character offset where it starts."""

    kind: TokenKind
    value: str
    pos: int

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the expression"
        if self.kind == "string":
            return f"text '{self.value}'"
        return f"'{self.value}'"


def tokenize(text: str) -> list[Token]:
    """Splits an expression into tokens; the last one is always 'end'."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = FULL_WIDTH.get(text[i], text[i])
        if ch.isspace():
            i += 1
        elif ch in "(),":
            tokens.append(Token(ch, ch, i))  # type: ignore[arg-type]
            i += 1
        elif ch in "=<>!":
            two = ch + FULL_WIDTH.get(text[i + 1], text[i + 1]) if i + 1 < n else ch
            if two in ("!=", "<>", "<=", ">="):
                tokens.append(Token("op", "!=" if two == "<>" else two, i))
                i += 2
            elif ch == "!":
                raise QueryError(
                    "'!' must be followed by '=' (write != for 'not equal')", text=text, position=i
                )
            else:
                tokens.append(Token("op", ch, i))
                i += 1
        elif ch in QUOTES:
            start = i
            value, i = _read_string(text, i)
            tokens.append(Token("string", value, start))
        elif ch.isascii() and (ch.isdigit() or (ch == "-" and i + 1 < n and text[i + 1].isdigit())):
            start = i
            i += 1
            while i < n and text[i].isascii() and text[i].isdigit():
                i += 1
            digits = text[start:i]
            if len(digits.lstrip("-")) > MAX_INT_DIGITS:
                raise QueryError("number too large", text=text, position=start)
            if i < n and (text[i].isalpha() or text[i] == "_"):
                raise QueryError("a number cannot run into letters", text=text, position=i)
            tokens.append(Token("int", digits, start))
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            start = i
            while i < n and text[i].isascii() and (text[i].isalnum() or text[i] in "_."):
                i += 1
            word = text[start:i]
            kind: TokenKind = "keyword" if word.lower() in KEYWORDS else "ident"
            tokens.append(Token(kind, word.lower() if kind == "keyword" else word, start))
        elif ch.isalpha():
            # A Chinese value typed without quotes is the likeliest slip of all; say so.
            start = i
            while i < n and text[i].isalpha():
                i += 1
            word = text[start:i]
            raise QueryError(f"text values need quotes: write '{word}'", text=text, position=start)
        else:
            raise QueryError(f"unexpected character {ch!r}", text=text, position=i)
    tokens.append(Token("end", "", n))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Reads a quoted literal starting at `start`; returns its value and the offset after it."""
    closing = QUOTES[text[start]]
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            esc = text[i + 1]
            if esc not in ESCAPES:
                raise QueryError(f"unknown escape \\{esc} in text", text=text, position=i)
            out.append(ESCAPES[esc])
            i += 2
        elif ch == closing:
            # SQL habit: a doubled quote stands for one quote.
            if i + 1 < n and text[i + 1] == closing:
                out.append(closing)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise QueryError(f"unterminated text: no closing {closing}", text=text, position=start)


# --- syntax tree -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A literal as written: its type, its value and where it starts."""

    kind: Literal["text", "int", "bool"]
    value: str | int | bool
    pos: int


@dataclass(frozen=True)
class Predicate:
    """A test on one field. `op` is one of OPS; `pos` points at the field, `op_pos` at the operator."""

    field: str
    pos: int
    op: str
    op_pos: int
    values: tuple[Value, ...] = ()


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
            raise self.error(f"expected {what}, found {self.tok.describe()}")
        return self.advance()

    def parse(self) -> Node:
        if self.at("end"):
            raise self.error("empty expression: write a condition such as gender = 'F'", 0)
        node = self.parse_or()
        if not self.at("end"):
            raise self.error(f"unexpected {self.tok.describe()} after a complete condition (missing and/or?)")
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
                raise self.error(f"nested too deeply (more than {MAX_DEPTH} levels)")
            self.advance()
            if tok.kind == "(":
                node = self.parse_or()
                self.expect(")", ")", f"')' to close the '(' at character {tok.pos + 1}")
            else:
                node = Not(self.parse_not(), tok.pos)
            self.depth -= 1
            return node
        if tok.kind == "keyword" and tok.value in ("true", "false"):
            self.advance()
            return Constant(tok.value == "true", tok.pos)
        if tok.kind == "ident":
            return self.parse_predicate()
        raise self.error(f"expected a field name, found {tok.describe()}")

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
            self.expect("keyword", "null", "null after 'is'" if not negate else "null after 'is not'")
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
            self.expect("keyword", "and", "'and' between the two bounds")
            values = (low, self.parse_value())
        elif word.kind == "keyword" and word.value == "contains":
            self.advance()
            values = (self.parse_value(),)
        elif negate:
            raise self.error(f"expected in, between or contains after 'not', found {word.describe()}")
        else:
            # A field on its own: the checker makes sure it is a yes/no field.
            return Predicate(name.value, name.pos, "truth", name.pos)
        op = word.value
        return Predicate(name.value, name.pos, f"not {op}" if negate else op, tok.pos, values)

    def parse_list(self) -> tuple[Value, ...]:
        self.expect("(", "(", "'(' to open the list of values")
        values = [self.parse_value()]
        while self.at(","):
            self.advance()
            if len(values) >= MAX_LIST:
                raise self.error(f"too many values in one list (at most {MAX_LIST})")
            values.append(self.parse_value())
        self.expect(")", ")", "',' or ')' in the list of values")
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
            raise self.error(f"expected a value, found {tok.describe()}: put text values in quotes")
        raise self.error(f"expected a value, found {tok.describe()}")


def parse(text: str) -> Node:
    """Parses an expression into a syntax tree (no field checks yet)."""
    if len(text) > MAX_LENGTH:
        raise QueryError(
            f"expression too long (at most {MAX_LENGTH} characters)", text=text, position=MAX_LENGTH
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
        suggestion = f"; did you mean {hint}?" if hint else " (`outreach audience fields` lists them)"
        raise fail(f"unknown field {p.field!r}{suggestion}", p.pos)
    op = p.op
    if op in ("is null", "is not null"):
        return replace(p, field=f.name)
    if f.presence_only:
        raise fail(f"{f.name} can only be tested with `is null` or `is not null`", p.op_pos)
    if f.type is FieldType.BOOL:
        if op not in ("truth", "=", "!="):
            raise fail(
                f"{f.name} is a yes/no field: write `{f.name}`, `not {f.name}` or `{f.name} = false`",
                p.op_pos,
            )
        if op != "truth" and p.values[0].kind != "bool":
            raise fail(f"{f.name} is a yes/no field: compare it with true or false", p.values[0].pos)
        return replace(p, field=f.name)
    if op == "truth":
        raise fail(f"{f.name} is a {f.type} field, not yes/no: compare it with a value", p.pos)
    if op in ORDERING and not (f.type is FieldType.INT or f.ordered):
        raise fail(f"{f.name} is text: use =, !=, in or contains (no ordering)", p.op_pos)
    if op in ("contains", "not contains") and (f.type is not FieldType.TEXT or f.allowed):
        raise fail(f"contains works on free text; use = or in for {f.name}", p.op_pos)
    values = tuple(_check_value(f, v, fail) for v in p.values)
    if op in ("between", "not between") and values[0].value > values[1].value:  # type: ignore[operator]
        raise fail("the lower bound of between is above the upper bound", values[0].pos)
    return replace(p, field=f.name, values=values)


def _check_value(f: Field, v: Value, fail: Any) -> Value:
    if f.type is FieldType.INT:
        if v.kind != "int":
            shown = f"'{v.value}'" if v.kind == "text" else str(v.value).lower()
            raise fail(f"{f.name} is a number; {shown} is not (write numbers without quotes)", v.pos)
        return v
    if v.kind != "text":
        shown = str(v.value).lower() if v.kind == "bool" else str(v.value)
        raise fail(f"{f.name} is text: put the value in quotes, e.g. '{shown}'", v.pos)
    value = str(v.value)
    if f.normalise is not None:
        normalised = f.normalise(value)
        if normalised is None:
            allowed = ", ".join(f.allowed or ())
            raise fail(f"{f.name} has no value '{value}'; allowed: {allowed}", v.pos)
        value = normalised
    return Value("text", value, v.pos)


def validate(text: str) -> Node:
    """Parses and type-checks an expression; raises QueryError pointing at the first problem."""
    return check(parse(text), text)


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
