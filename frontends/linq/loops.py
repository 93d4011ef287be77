"""Lowering `Dataset.iterate` to an `ir.operators.While`.

The body is an ordinary Python function over Datasets: we call it with
`LoopVar` placeholders standing for "this iteration's value" and record the
plan it builds, which becomes the While body. Anything the body reads that
does not depend on a placeholder (the points in k-means, the edges in
PageRank) is a loop-invariant input, computed once.

Types must be the same every iteration. A body that widens them (an int
rank that becomes a float) would otherwise be an error on the first line of
every loop, so the initial value is cast to the body's types and the body is
traced again (at most a few times; it must not have side effects).

`until(old, new)` turns into the While's stop relation: one row, one
boolean column, TRUE = stop.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import DataType, common_type

from musketeer.frontends.linq.columns import Ref, has_aggregate, to_column
from musketeer.frontends.linq.dataset import Dataset, call_user
from musketeer.frontends.linq.errors import LinqError

#: How many times the body may be traced while its column types settle.
MAX_TRACES = 4


def _outputs(result: Any, count: int) -> list[Dataset]:
    """The body's return value as a list of `count` datasets."""
    items = list(result) if count > 1 and isinstance(result, (tuple, list)) else [result]
    if len(items) != count or not all(isinstance(d, Dataset) for d in items):
        want = "a Dataset" if count == 1 else f"a tuple of {count} Datasets (one per loop variable)"
        got = type(result).__name__ if not isinstance(result, (tuple, list)) else f"{len(items)} values"
        raise LinqError(f"iterate(): the body must return {want}, got {got}")
    return items


def _settle(name: str, init: O.Op, new: Dataset) -> tuple[O.Op, O.Op, bool]:
    """Match one loop variable's next value to its initial value.

    Returns (initial op, next op, changed): columns reordered to the initial
    order; a body type narrower than the initial type is cast up in the
    body; an initial type narrower than the body's is cast up in the
    initial value (changed=True: trace the body again).
    """
    a, b = init.schema, new.schema
    if set(a.names) != set(b.names) or len(a) != len(b):
        raise LinqError(f"iterate(): loop variable {name!r} starts with columns {list(a.names)} but the body "
                        f"returns {list(b.names)}; the body must return the same columns")
    init_casts: list[tuple[str, E.Expr]] = []
    body_casts: list[tuple[str, E.Expr]] = []
    for field in a:
        it, bt = field.dtype, b.dtype(field.name)
        common: DataType | None = common_type(it, bt)
        if it == bt:
            init_casts.append((field.name, E.Col(field.name)))
            body_casts.append((field.name, E.Col(field.name)))
        elif common == it:
            init_casts.append((field.name, E.Col(field.name)))
            body_casts.append((field.name, E.Cast(E.Col(field.name), it)))
        elif common is not None:
            init_casts.append((field.name, E.Cast(E.Col(field.name), common)))
            body_casts.append((field.name, E.Col(field.name) if common == bt else E.Cast(E.Col(field.name), common)))
        else:
            raise LinqError(f"iterate(): column {field.name!r} of loop variable {name!r} starts as {it} but the "
                            f"body makes it {bt}; cast one of them")
    changed = any(not (isinstance(e, E.Col)) for _, e in init_casts)
    new_init = O.Project(init, tuple(init_casts)) if changed else init
    same = [n for n, _ in body_casts] == list(b.names) and all(isinstance(e, E.Col) for _, e in body_casts)
    new_body = new.op if same else O.Project(new.op, tuple(body_casts))
    return new_init, new_body, changed


def _one_row(op: O.Op) -> bool:
    """Whether `op` certainly yields exactly one row (a global aggregate)."""
    while isinstance(op, (O.Project, O.Sort)):
        op = op.input
    return isinstance(op, O.Aggregate) and not op.keys


def _all_true(data: Dataset) -> O.Op:
    """A one-row relation: TRUE when `data` (one boolean column) has rows and all are TRUE."""
    schema = data.schema
    if len(schema) != 1 or schema.fields[0].dtype.kind != "bool":
        raise LinqError(f"iterate(until=...): the stop dataset must have one boolean column, got {schema}")
    flag = E.Col(schema.names[0])
    if _one_row(data.op):
        return data.op
    as_int = O.Project(data.op, (("flag", E.Case(((flag, E.Lit.of(1)),), E.Lit.of(0))),))
    least = O.Aggregate(as_int, (), (("least", E.AggCall("min", "flag")),))
    return O.Project(least, (("stop", E.Compare("=", E.Col("least"), E.Lit.of(1))),))


def _stop_relation(result: Any, template: Dataset) -> O.Op:
    if isinstance(result, Dataset):
        return _all_true(result)
    if isinstance(result, bool) or result is None:
        raise LinqError("iterate(until=...) returned a Python bool; it must build a column expression or a "
                        "dataset from old/new (e.g. lambda old, new: new.delta.max() < 1e-6)")
    c = to_column(result)
    origins = {n.origin for n in c.expr.walk() if isinstance(n, Ref)}
    plain = [n.name for n in c.expr.walk() if isinstance(n, E.Col)]
    if plain or len(origins) != 1:
        raise LinqError("iterate(until=...): a column expression must read exactly one dataset's columns "
                        "(new.x or old.x, not col('x')); to compare old and new, join them first: "
                        "old.join(new, on='id', suffixes=('_old', ''))"
                        ".agg(d=(col('x') - col('x_old')).abs().max()).d < eps")
    op = next(o for o in c.origins if id(o) in origins)
    source = template._new(op)
    stop = source.agg(stop=c) if has_aggregate(c.expr) else source.select(stop=c)
    return _all_true(stop)


def lower_iterate(data: Dataset, body: Callable[..., Any], until: Any, max_iter: int | None, fixpoint: bool,
                  carry: Sequence[Dataset], name: str = "loop") -> O.While:
    if isinstance(until, str):
        if until != "fixpoint":
            raise LinqError(f"iterate(): until= is a function (old, new) -> condition or 'fixpoint', not {until!r}")
        until, fixpoint = None, True
    if max_iter is not None and (not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1):
        raise LinqError(f"iterate(): max_iter must be a whole number >= 1, got {max_iter!r}")
    if until is None and not fixpoint and max_iter is None:
        raise LinqError("iterate() needs a stop rule: until=..., fixpoint=True or max_iter=N")
    if not callable(body):
        raise LinqError(f"iterate(): the body must be a function Dataset -> Dataset, got {type(body).__name__}")
    if until is not None and not callable(until):
        raise LinqError(f"iterate(): until= must be a function (old, new) -> condition, got {type(until).__name__}")
    for d in carry:
        if not isinstance(d, Dataset):
            raise LinqError(f"iterate(carry=...) needs Datasets, got {type(d).__name__}")
    if not isinstance(name, str) or not name:
        raise LinqError(f"iterate(): name must be a non-empty string, got {name!r}")
    names = (name,) + tuple(f"{name}_carry{i + 1}" for i in range(len(carry)))
    inits = [data.op] + [d.op for d in carry]
    for _ in range(MAX_TRACES):
        olds = [data._new(O.LoopVar(n, op.schema)) for n, op in zip(names, inits)]
        news = _outputs(call_user(body, olds, "iterate(body)"), len(names))
        settled = [_settle(n, init, new) for n, init, new in zip(names, inits, news)]
        inits = [s[0] for s in settled]
        if not any(s[2] for s in settled):
            break
    else:
        raise LinqError("iterate(): the body keeps changing its column types (decimal scales growing?); "
                        "cast the initial dataset and the body's result to fixed types")
    nexts = [s[1] for s in settled]
    stop = None
    if until is not None:
        new_sets = [data._new(op) if op is not new.op else new for op, new in zip(nexts, news)]
        old_arg: Any = tuple(olds) if carry else olds[0]
        new_arg: Any = tuple(new_sets) if carry else new_sets[0]
        stop = _stop_relation(call_user(until, [old_arg, new_arg], "iterate(until=...)"), data)
    return O.While(tuple(inits), names, tuple(nexts), names[0], max_iter, stop, fixpoint)


__all__ = ["lower_iterate"]
