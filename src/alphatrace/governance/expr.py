"""The rule language of policies: comparisons of named values, `and`, `or`, `not`, parentheses.

Rules come from user files and decide kills, so they are parsed by hand into an AST and
evaluated over arrays; nothing ever reaches `eval`. Evaluation is vectorised (one boolean per
subject or per run) so a policy over a million runs costs a few numpy operations, and the same
code answers for one subject. A missing value (NaN/null) makes every comparison that reads it
false, including `!=`, so a rule can never fire on data that does not exist.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

CMP_OPS = ("<=", ">=", "==", "!=", "<", ">")
KEYWORDS = ("and", "or", "not")


class ExprError(Exception):
    """A rule that does not parse; `pos` is the 0-based column inside the expression."""

    def __init__(self, message: str, pos: int, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.message, self.pos, self.suggestion = message, pos, suggestion


@dataclass(frozen=True)
class Num:
    value: float
    pos: int


@dataclass(frozen=True)
class Name:
    name: str
    pos: int


Operand = Num | Name


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Operand
    right: Operand
    pos: int


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Cmp | And | Or | Not


@dataclass(frozen=True)
class Token:
    kind: str  # num | name | kw | op | lpar | rpar | minus | end
    text: str
    pos: int


_NUM = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FOREIGN = {"&&": "and", "||": "or", "!": "not", "=": "=="}


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == "(":
            out.append(Token("lpar", c, i))
            i += 1
            continue
        if c == ")":
            out.append(Token("rpar", c, i))
            i += 1
            continue
        if c in "-+":
            out.append(Token("minus" if c == "-" else "plus", c, i))
            i += 1
            continue
        two = text[i : i + 2]
        if two in CMP_OPS:
            out.append(Token("op", two, i))
            i += 2
            continue
        if c in "<>":
            out.append(Token("op", c, i))
            i += 1
            continue
        if two in _FOREIGN or c in _FOREIGN:
            bad = two if two in _FOREIGN else c
            raise ExprError(f"unknown operator {bad!r}", i, f"use {_FOREIGN[bad]!r}")
        m = _NUM.match(text, i)
        if m:
            out.append(Token("num", m.group(0), i))
            i = m.end()
            if i < n and (text[i].isalpha() or text[i] == "_"):
                raise ExprError(f"unexpected {text[i]!r} after the number", i,
                                "durations and units are not part of rules; write plain numbers")
            continue
        m = _NAME.match(text, i)
        if m:
            word = m.group(0)
            kind = "kw" if word.lower() in KEYWORDS else "name"
            out.append(Token(kind, word.lower() if kind == "kw" else word, i))
            i = m.end()
            continue
        raise ExprError(f"unexpected character {c!r}", i)
    out.append(Token("end", "", n))
    return out


def _describe(t: Token) -> str:
    return {"end": "the end of the rule", "num": f"number {t.text}", "name": f"name {t.text!r}"}.get(
        t.kind, repr(t.text))


class _Parser:
    """Recursive descent: or → and → not → comparison | ( or )."""

    def __init__(self, text: str, check_name: Callable[[Name], None]) -> None:
        self.toks = tokenize(text)
        self.i = 0
        self.check_name = check_name

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExprError("empty rule", 0, "write a condition such as `error_rate > 0.2`")
        node = self.or_()
        if self.tok.kind != "end":
            t = self.tok
            hint = None
            if t.kind in ("num", "name", "lpar"):
                hint = "join conditions with `and` or `or`"
            elif t.kind == "rpar":
                hint = "this `)` has no matching `(`"
            raise ExprError(f"unexpected {_describe(t)}", t.pos, hint)
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.tok.kind == "kw" and self.tok.text == "or":
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Node:
        items = [self.not_()]
        while self.tok.kind == "kw" and self.tok.text == "and":
            self.take()
            items.append(self.not_())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_(self) -> Node:
        if self.tok.kind == "kw" and self.tok.text == "not":
            self.take()
            return Not(self.not_())
        return self.atom()

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "lpar":
            self.take()
            node = self.or_()
            if self.tok.kind != "rpar":
                raise ExprError(f"expected `)` but found {_describe(self.tok)}", self.tok.pos,
                                f"close the `(` opened at column {t.pos + 1}")
            self.take()
            if self.tok.kind == "op":
                raise ExprError("cannot compare a condition (true/false) with a number",
                                self.tok.pos, "compare metric values, then combine with and/or")
            return node
        left = self.operand()
        if self.tok.kind != "op":
            what = f"metric {left.name!r}" if isinstance(left, Name) else f"number {left.value:g}"
            raise ExprError(f"expected a comparison after {what}, found {_describe(self.tok)}",
                            self.tok.pos, "a rule is true/false: write e.g. `error_rate > 0.2`")
        op = self.take()
        right = self.operand()
        if self.tok.kind == "op":
            raise ExprError("chained comparisons are not supported", self.tok.pos,
                            "write `a < b and b < c`")
        return Cmp(op.text, left, right, op.pos)

    def operand(self) -> Operand:
        t = self.take()
        if t.kind in ("minus", "plus"):
            n = self.take()
            if n.kind != "num":
                raise ExprError(f"expected a number after {t.text!r}, found {_describe(n)}", n.pos,
                                "only numbers can be negated")
            v = _finite(n)
            return Num(-v if t.kind == "minus" else v, t.pos)
        if t.kind == "num":
            return Num(_finite(t), t.pos)
        if t.kind == "name":
            node = Name(t.text, t.pos)
            self.check_name(node)
            return node
        if t.kind == "kw":
            raise ExprError(f"`{t.text}` cannot stand here", t.pos, "expected a metric or a number")
        raise ExprError(f"expected a metric or a number, found {_describe(t)}", t.pos)


def _finite(t: Token) -> float:
    v = float(t.text)
    if not np.isfinite(v):
        raise ExprError(f"number {t.text} is out of range", t.pos)
    return v


def parse(text: str, is_known: Callable[[str], bool], candidates: Iterable[str],
          kind: str = "metric") -> Node:
    """The AST of `text`; every name must satisfy `is_known` (else a 'did you mean' error)."""
    pool = list(candidates)

    def check(node: Name) -> None:
        if not is_known(node.name):
            close = difflib.get_close_matches(node.name, pool, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(pool)}"
            raise ExprError(f"unknown {kind} {node.name!r}", node.pos, hint)

    return _Parser(text, check).parse()


def names(node: Node) -> list[str]:
    """Names the rule reads, in first-use order."""
    seen: dict[str, None] = {}

    def walk(n: Node) -> None:
        if isinstance(n, Cmp):
            for side in (n.left, n.right):
                if isinstance(side, Name):
                    seen.setdefault(side.name, None)
        elif isinstance(n, And | Or):
            for it in n.items:
                walk(it)
        else:
            walk(n.item)

    walk(node)
    return list(seen)


_OPS: dict[str, Callable[[FloatArray, FloatArray], BoolArray]] = {
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
    "==": np.equal, "!=": np.not_equal,
}


def evaluate(node: Node, env: Mapping[str, FloatArray], n: int) -> BoolArray:
    """The rule for each of `n` rows; `env` maps names to float arrays (NaN = missing)."""

    def operand(o: Operand) -> FloatArray:
        if isinstance(o, Num):
            return np.full(n, o.value, dtype=np.float64)
        return np.asarray(env[o.name], dtype=np.float64)

    def walk(x: Node) -> BoolArray:
        if isinstance(x, Cmp):
            a, b = operand(x.left), operand(x.right)
            known = ~(np.isnan(a) | np.isnan(b))
            with np.errstate(invalid="ignore"):
                return np.asarray(_OPS[x.op](a, b) & known, dtype=np.bool_)
        if isinstance(x, And):
            out = np.ones(n, dtype=np.bool_)
            for it in x.items:
                out &= walk(it)
            return out
        if isinstance(x, Or):
            out = np.zeros(n, dtype=np.bool_)
            for it in x.items:
                out |= walk(it)
            return out
        return ~walk(x.item)

    return walk(node)


def evaluate_one(node: Node, values: Mapping[str, float | int | None]) -> bool:
    """The rule for one set of values (None = missing)."""
    env = {k: np.array([np.nan if v is None else float(v)]) for k, v in values.items()}
    return bool(evaluate(node, env, 1)[0])
