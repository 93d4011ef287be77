"""Skywriting source -> AST: the lark grammar (grammar.lark) and a transformer
into small frozen node classes, each carrying where it came from.

The AST is what the compiler (compiler.py) turns into the bytecode the
resumable interpreter runs. `include "name";` is resolved here, at parse
time, into the included file's statements (relative to the including file,
else the standard library folder), so a running script never reads files.
"""

from __future__ import annotations

import ast as pyast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from musketeer.ir.types import MusketeerError, SourceLoc

STDLIB = Path(__file__).resolve().parent / "stdlib"
SUFFIXES = ("", ".sky", ".sw")


class SkyError(MusketeerError):
    """A Skywriting script that cannot be parsed or that fails while it runs:
    one line, located `file:line:col`, exit 2."""

    def located(self) -> str:
        """`file:line:col: message` (how the error travels from a worker)."""
        if self.loc is None:
            return self.message
        return f"{self.loc.file}:{self.loc.line}:{self.loc.col}: {self.message}"


# --- nodes --------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    loc: SourceLoc


@dataclass(frozen=True)
class Const(Node):
    value: Any


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class DictLit(Node):
    pairs: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "!" | "-" | "*"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Logic(Node):
    op: str  # "&&" | "||" (short-circuit)
    left: Node
    right: Node


@dataclass(frozen=True)
class Call(Node):
    callee: Node
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Index(Node):
    target: Node
    key: Node


@dataclass(frozen=True)
class Function(Node):
    name: str
    params: tuple[str, ...]
    body: tuple[Node, ...]  # statements; a lambda's body is one Return


@dataclass(frozen=True)
class Assign(Node):
    target: Node  # Name or Index
    op: str  # "=" or "+=", ...
    value: Node


@dataclass(frozen=True)
class ExprStmt(Node):
    expr: Node


@dataclass(frozen=True)
class Return(Node):
    value: Node | None


@dataclass(frozen=True)
class Break(Node):
    pass


@dataclass(frozen=True)
class Continue(Node):
    pass


@dataclass(frozen=True)
class If(Node):
    cond: Node
    then: tuple[Node, ...]
    orelse: tuple[Node, ...]


@dataclass(frozen=True)
class While(Node):
    cond: Node
    body: tuple[Node, ...]
    test_first: bool  # False: do { } while ( );


@dataclass(frozen=True)
class For(Node):
    var: str
    iterable: Node
    body: tuple[Node, ...]


@dataclass(frozen=True)
class FuncDecl(Node):
    function: Function


# --- parsing ------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark((Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8"),
                parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _string(token: Token) -> str:
    text = str(token)
    if text[0] == "'":  # same escapes, other quote
        text = '"' + text[1:-1].replace('\\\'', "'").replace('"', '\\"') + '"'
    return pyast.literal_eval(text)  # a string literal only: escapes as in Python/JavaScript


class _Build(Transformer):
    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def _loc(self, meta: Any) -> SourceLoc:
        return SourceLoc(self.file, getattr(meta, "line", 0) or 0, getattr(meta, "column", 0) or 0)

    def _tok(self, token: Token) -> SourceLoc:
        return SourceLoc(self.file, token.line or 0, token.column or 0)

    # statements
    @v_args(meta=True)
    def start(self, meta: Any, stmts: list[Node]) -> tuple[Node, ...]:
        return tuple(s for s in stmts if s is not None)

    @v_args(meta=True)
    def block(self, meta: Any, stmts: list[Node]) -> tuple[Node, ...]:
        return tuple(s for s in stmts if s is not None)

    def _target(self, target: Node) -> Node:
        if not isinstance(target, (Name, Index)):
            raise SkyError("can only assign to a variable or an element (x = ..., x[i] = ...)", target.loc)
        return target

    @v_args(meta=True)
    def assign(self, meta: Any, c: list[Any]) -> Node:
        return Assign(self._loc(meta), self._target(c[0]), "=", c[1])

    @v_args(meta=True)
    def augassign(self, meta: Any, c: list[Any]) -> Node:
        return Assign(self._loc(meta), self._target(c[0]), str(c[1]), c[2])

    @v_args(meta=True)
    def expr_stmt(self, meta: Any, c: list[Any]) -> Node:
        return ExprStmt(self._loc(meta), c[0])

    @v_args(meta=True)
    def return_stmt(self, meta: Any, c: list[Any]) -> Node:
        return Return(self._loc(meta), c[0])

    @v_args(meta=True)
    def break_stmt(self, meta: Any, c: list[Any]) -> Node:
        return Break(self._loc(meta))

    @v_args(meta=True)
    def continue_stmt(self, meta: Any, c: list[Any]) -> Node:
        return Continue(self._loc(meta))

    def empty_stmt(self, c: list[Any]) -> None:
        return None

    @v_args(meta=True)
    def if_stmt(self, meta: Any, c: list[Any]) -> Node:
        orelse = c[2]
        if orelse is None:
            orelse = ()
        elif isinstance(orelse, If):
            orelse = (orelse,)
        return If(self._loc(meta), c[0], c[1], orelse)

    @v_args(meta=True)
    def while_stmt(self, meta: Any, c: list[Any]) -> Node:
        return While(self._loc(meta), c[0], c[1], True)

    @v_args(meta=True)
    def do_while_stmt(self, meta: Any, c: list[Any]) -> Node:
        return While(self._loc(meta), c[1], c[0], False)

    @v_args(meta=True)
    def for_stmt(self, meta: Any, c: list[Any]) -> Node:
        return For(self._loc(meta), str(c[0]), c[1], c[2])

    @v_args(meta=True)
    def func_decl(self, meta: Any, c: list[Any]) -> Node:
        loc = self._loc(meta)
        return FuncDecl(loc, Function(loc, str(c[0]), c[1], c[2]))

    @v_args(meta=True)
    def include_stmt(self, meta: Any, c: list[Any]) -> Node:
        return ("include", self._tok(c[0]), _string(c[0]))  # type: ignore[return-value]  # resolved by parse()

    def params(self, c: list[Any]) -> tuple[str, ...]:
        names = tuple(str(t) for t in c if t is not None)
        if len(set(names)) != len(names):
            raise SkyError("a parameter name appears twice", self._tok(c[0]))
        return names

    # expressions
    @v_args(meta=True)
    def lambda_expr(self, meta: Any, c: list[Any]) -> Node:
        loc = self._loc(meta)
        return Function(loc, "<lambda>", c[0], (Return(c[1].loc, c[1]),))

    @v_args(meta=True)
    def func_expr(self, meta: Any, c: list[Any]) -> Node:
        loc = self._loc(meta)
        return Function(loc, "<function>", c[0], c[1])

    @v_args(meta=True)
    def or_op(self, meta: Any, c: list[Any]) -> Node:
        return Logic(self._loc(meta), "||", c[0], c[1])

    @v_args(meta=True)
    def and_op(self, meta: Any, c: list[Any]) -> Node:
        return Logic(self._loc(meta), "&&", c[0], c[1])

    def binop(self, c: list[Any]) -> Node:
        return Binary(self._tok(c[1]), str(c[1]), c[0], c[2])

    @v_args(meta=True)
    def not_op(self, meta: Any, c: list[Any]) -> Node:
        return Unary(self._loc(meta), "!", c[0])

    @v_args(meta=True)
    def neg_op(self, meta: Any, c: list[Any]) -> Node:
        return Unary(self._loc(meta), "-", c[0])

    @v_args(meta=True)
    def deref(self, meta: Any, c: list[Any]) -> Node:
        return Unary(self._loc(meta), "*", c[0])

    @v_args(meta=True)
    def call(self, meta: Any, c: list[Any]) -> Node:
        args = tuple(a for a in c[1:] if a is not None)
        return Call(self._loc(meta), c[0], args)

    @v_args(meta=True)
    def index(self, meta: Any, c: list[Any]) -> Node:
        return Index(self._loc(meta), c[0], c[1])

    def int_lit(self, c: list[Token]) -> Node:
        return Const(self._tok(c[0]), int(c[0]))

    def float_lit(self, c: list[Token]) -> Node:
        return Const(self._tok(c[0]), float(c[0]))

    def string_lit(self, c: list[Token]) -> Node:
        return Const(self._tok(c[0]), _string(c[0]))

    @v_args(meta=True)
    def true_lit(self, meta: Any, c: list[Any]) -> Node:
        return Const(self._loc(meta), True)

    @v_args(meta=True)
    def false_lit(self, meta: Any, c: list[Any]) -> Node:
        return Const(self._loc(meta), False)

    @v_args(meta=True)
    def null_lit(self, meta: Any, c: list[Any]) -> Node:
        return Const(self._loc(meta), None)

    def name(self, c: list[Token]) -> Node:
        return Name(self._tok(c[0]), str(c[0]))

    @v_args(meta=True)
    def list_lit(self, meta: Any, c: list[Any]) -> Node:
        return ListLit(self._loc(meta), tuple(x for x in c if x is not None))

    @v_args(meta=True)
    def dict_lit(self, meta: Any, c: list[Any]) -> Node:
        return DictLit(self._loc(meta), tuple(p for p in c if p is not None))

    def pair(self, c: list[Any]) -> tuple[Node, Node]:
        return (c[0], c[1])


def _syntax_error(exc: UnexpectedInput, file: str, text: str) -> SkyError:
    loc = SourceLoc(file, getattr(exc, "line", 0) or 0, getattr(exc, "column", 0) or 0)
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            return SkyError("unexpected end of script (a missing ';' or '}'?)", loc)
        if "SEMICOLON" in (exc.expected or ()) and exc.token.type != "SEMICOLON":
            return SkyError(f"expected ';' before {str(exc.token)!r}", loc)
        return SkyError(f"unexpected {str(exc.token)!r}", loc)
    if isinstance(exc, UnexpectedCharacters):
        return SkyError(f"unexpected character {text[exc.pos_in_stream]!r}", loc)
    if isinstance(exc, UnexpectedEOF):
        return SkyError("unexpected end of script", loc)
    return SkyError("syntax error", loc)


def parse_text(text: str, file: str = "<script>", _including: tuple[str, ...] = ()) -> tuple[Node, ...]:
    """The statements of a script, with its includes spliced in."""
    try:
        tree = _parser().parse(text)
        stmts = _Build(file).transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, file, text) from None
    except Exception as exc:  # a SkyError raised inside the transformer arrives wrapped
        inner = getattr(exc, "orig_exc", None)
        if isinstance(inner, SkyError):
            raise inner from None
        raise
    out: list[Node] = []
    for s in stmts:
        if isinstance(s, tuple) and s and s[0] == "include":
            out += _include(s[2], s[1], file, _including)
        else:
            out.append(s)
    return tuple(out)


def _include(name: str, loc: SourceLoc, file: str, including: tuple[str, ...]) -> tuple[Node, ...]:
    base = Path(file).parent if not file.startswith("<") else Path.cwd()
    name = name.removeprefix("file://")
    for folder in (base, STDLIB):
        for suffix in SUFFIXES:
            path = (folder / (name + suffix)).resolve()
            if path.is_file():
                if str(path) in including:
                    raise SkyError(f"include {name!r} includes itself", loc)
                return parse_text(path.read_text(encoding="utf-8"), str(path), (*including, str(path)))
    raise SkyError(f"include {name!r}: no such script next to {Path(file).name} or in the standard library "
                   f"({', '.join(sorted(p.stem for p in STDLIB.glob('*.sky')))})", loc)


def parse_file(path: str | Path) -> tuple[Node, ...]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SkyError(f"cannot read {path}: {exc.strerror}") from None
    return parse_text(text, str(path), (str(p.resolve()),))
