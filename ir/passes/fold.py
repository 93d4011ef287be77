"""Expression simplification: literal folding and three-valued boolean logic.

`fold_expr(e, schema)` is the expression-level engine behind the
`constant_folding` pass; predicate pushdown and project merging call it too,
after substituting expressions, so that every pass leaves folded expressions
behind (which keeps `optimize` idempotent).

Every rule holds in SQL's three-valued logic, where NULL means "unknown":
`x AND TRUE = x`, `x AND FALSE = FALSE`, `x OR TRUE = TRUE`, `NOT NOT x = x`,
`NOT (a < b) = a >= b`, and the distributive law used to factor conjuncts
shared by every branch of an OR:

    (a = b AND x) OR (a = b AND y)   ->   a = b AND (x OR y)

which turns TPC-H Q19's disjunction into a join key. A folded node always
has the type of the node it replaces; a rewrite that would change the type is
dropped (the node keeps its folded children).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Callable

from musketeer.ir import expr as E
from musketeer.ir.expr import Expr, Lit
from musketeer.ir.passes import literals as L
from musketeer.ir.schema import Schema
from musketeer.ir.types import BOOL, DataType, IRError

TRUE = Lit(True, BOOL)
FALSE = Lit(False, BOOL)

_NEGATED_CMP = {"=": "<>", "<>": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_MIRRORED_CMP = {"=": "=", "<>": "<>", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
# Scalar functions whose result is NULL whenever an argument is NULL.
_STRICT_FUNCS = {"upper", "lower", "trim", "ltrim", "rtrim", "substring", "length", "abs",
                 "round", "sqrt", "ln", "exp", "floor", "ceil"}


def is_null(e: Expr) -> bool:
    return isinstance(e, Lit) and e.value is None


def is_true(e: Expr) -> bool:
    return isinstance(e, Lit) and e.value is True


def is_false(e: Expr) -> bool:
    return isinstance(e, Lit) and e.value is False


def fold_expr(e: Expr, schema: Schema) -> Expr:
    """`e` with literal-only parts evaluated and boolean logic simplified.

    `schema` is the input schema `e` is evaluated over (needed to keep types).
    """

    def step(node: Expr) -> Expr:
        try:
            new = _simplify(node, schema)
        except (L.CannotFold, IRError, ArithmeticError, ValueError, OverflowError):
            return node
        if new is node or new == node:
            return node
        try:
            same_type = new.type_in(schema) == node.type_in(schema)
        except IRError:
            same_type = False
        return new if same_type else node

    return E.transform(e, step)


def fold_predicate(e: Expr, schema: Schema) -> Expr | None:
    """A folded filter condition, or None when it is certainly TRUE."""
    folded = fold_expr(e, schema)
    return None if is_true(folded) else folded


def _simplify(node: Expr, schema: Schema) -> Expr:
    rule = _RULES.get(type(node))
    return rule(node, schema) if rule is not None else node


def _null_of(node: Expr, schema: Schema) -> Lit:
    return Lit(None, node.type_in(schema))


def _arith(node: E.Arith, schema: Schema) -> Expr:
    a, b = node.left, node.right
    if is_null(a) or is_null(b):
        return _null_of(node, schema)
    if isinstance(a, Lit) and isinstance(b, Lit):
        return Lit(L.arith(node.op, a.value, b.value, node.type_in(schema)), node.type_in(schema))
    return node


def _compare(node: E.Compare, schema: Schema) -> Expr:
    a, b = node.left, node.right
    if is_null(a) or is_null(b):
        return Lit(None, BOOL)
    if isinstance(a, Lit) and isinstance(b, Lit):
        return Lit(L.compare(node.op, a.value, b.value), BOOL)
    # `date_col < '1995-01-01'`: engines cast the string to the column's type;
    # doing it here hands every backend a well-typed comparison.
    if isinstance(b, Lit) and isinstance(b.value, str):
        lit = _temporal_literal(b.value, a.type_in(schema))
        return node if lit is None else E.Compare(node.op, a, lit)
    if isinstance(a, Lit) and isinstance(a.value, str):
        lit = _temporal_literal(a.value, b.type_in(schema))
        return node if lit is None else E.Compare(_MIRRORED_CMP[node.op], b, lit)
    return node


def _temporal_literal(text: str, t: DataType) -> Lit | None:
    if t.kind not in ("date", "timestamp"):
        return None
    try:
        return Lit(L.cast(text, t), t)
    except L.CannotFold:
        return None


def _not(node: E.Not, schema: Schema) -> Expr:
    a = node.arg
    if isinstance(a, Lit):
        return Lit(None if a.value is None else not a.value, BOOL)
    if isinstance(a, E.Not) and a.arg.type_in(schema) == BOOL:
        return a.arg
    if isinstance(a, E.Compare):
        return E.Compare(_NEGATED_CMP[a.op], a.left, a.right)
    if isinstance(a, (E.IsNull, E.InList, E.Like)):
        return _replace(a, negated=not a.negated)
    return node


def _replace(e: Expr, **changes: object) -> Expr:
    return dataclasses.replace(e, **changes)  # type: ignore[type-var]


def _flatten(args: tuple[Expr, ...], kind: type) -> list[Expr]:
    out: list[Expr] = []
    for a in args:
        for x in (a.args if isinstance(a, kind) else (a,)):  # type: ignore[attr-defined]
            if x not in out:
                out.append(x)
    return out


def _bool_result(args: list[Expr], empty: Lit, kind: type, schema: Schema) -> Expr:
    if not args:
        return empty
    if len(args) == 1:
        only = args[0]
        return Lit(None, BOOL) if is_null(only) else only
    return kind(tuple(args))


def _and(node: E.And, schema: Schema) -> Expr:
    args = _flatten(node.args, E.And)
    if any(is_false(a) for a in args):
        return FALSE
    return _bool_result([a for a in args if not is_true(a)], TRUE, E.And, schema)


def _or(node: E.Or, schema: Schema) -> Expr:
    args = _flatten(node.args, E.Or)
    if any(is_true(a) for a in args):
        return TRUE
    args = [a for a in args if not is_false(a)]
    factored = _factor_common_conjuncts(args, schema)
    if factored is not None:
        return factored
    return _bool_result(args, FALSE, E.Or, schema)


def _factor_common_conjuncts(branches: list[Expr], schema: Schema) -> Expr | None:
    """(c AND x) OR (c AND y) -> c AND (x OR y); (c) OR (c AND y) -> c."""
    if len(branches) < 2:
        return None
    parts = [E.conjuncts(b) for b in branches]
    common = [c for c in parts[0] if all(c in p for p in parts[1:])]
    if not common:
        return None
    rests = [[c for c in p if c not in common] for p in parts]
    if any(not r for r in rests):
        return E.conjoin(common)  # absorption: c OR (c AND y) = c
    disjunction = _or(E.Or(tuple(E.conjoin(r) for r in rests)), schema)  # type: ignore[misc]
    return _and(E.And(tuple(common) + (disjunction,)), schema)


def _neg(node: E.Neg, schema: Schema) -> Expr:
    a = node.arg
    if is_null(a):
        return _null_of(node, schema)
    if isinstance(a, Lit) and L.is_number(a.value):
        return Lit(-a.value, a.dtype)
    if isinstance(a, Lit) and isinstance(a.value, E.Interval):
        return Lit(E.Interval(-a.value.months, -a.value.days), a.dtype)
    return node


def _is_null(node: E.IsNull, schema: Schema) -> Expr:
    if isinstance(node.arg, Lit):
        return Lit((node.arg.value is None) != node.negated, BOOL)
    return node


def _in_list(node: E.InList, schema: Schema) -> Expr:
    if is_null(node.arg):
        return Lit(None, BOOL)
    if not (isinstance(node.arg, Lit) and all(isinstance(v, Lit) for v in node.values)):
        return node
    found, unknown = False, False
    for v in node.values:
        assert isinstance(v, Lit)
        if v.value is None:
            unknown = True
        elif L.compare("=", node.arg.value, v.value):
            found = True
    if found:
        return Lit(not node.negated, BOOL)
    return Lit(None, BOOL) if unknown else Lit(node.negated, BOOL)


def _like(node: E.Like, schema: Schema) -> Expr:
    return Lit(None, BOOL) if is_null(node.arg) else node


def _case(node: E.Case, schema: Schema) -> Expr:
    whens = [(c, v) for c, v in node.whens if not (is_false(c) or is_null(c))]
    if whens and is_true(whens[0][0]):
        return whens[0][1]
    if not whens:
        return node.default if node.default is not None else _null_of(node, schema)
    if len(whens) == len(node.whens):
        return node
    return E.Case(tuple(whens), node.default)


def _cast(node: E.Cast, schema: Schema) -> Expr:
    a = node.arg
    if is_null(a):
        return Lit(None, node.to)
    if isinstance(a, Lit):
        return Lit(L.cast(a.value, node.to), node.to)
    if a.type_in(schema) == node.to:
        return a
    return node


def _extract(node: E.Extract, schema: Schema) -> Expr:
    a = node.arg
    if is_null(a):
        return _null_of(node, schema)
    if isinstance(a, Lit) and isinstance(a.value, dt.date):
        return Lit(L.extract(node.part, a.value), node.type_in(schema))
    return node


def _func(node: E.Func, schema: Schema) -> Expr:
    if node.name in _STRICT_FUNCS and any(is_null(a) for a in node.args):
        return _null_of(node, schema)
    return node


_RULES: dict[type, Callable[..., Expr]] = {
    E.Arith: _arith,
    E.Compare: _compare,
    E.Not: _not,
    E.And: _and,
    E.Or: _or,
    E.Neg: _neg,
    E.IsNull: _is_null,
    E.InList: _in_list,
    E.Like: _like,
    E.Case: _case,
    E.Cast: _cast,
    E.Extract: _extract,
    E.Func: _func,
}
