"""The human-readable text form of the IR: used by `explain` and golden tests.

One line per operator, `%N = Kind(args) -> (schema)`, inputs before users,
so diffs of golden files read like diffs of a program.
"""

from __future__ import annotations

import datetime as dt

from musketeer.ir import expr as E
from musketeer.ir import operators as O

_PREC = {"OR": 1, "AND": 2, "NOT": 3, "CMP": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}


def literal_text(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, E.Interval):
        return f"INTERVAL '{value}'"
    return repr(value)


def expr_text(e: E.Expr, parent: int = 0) -> str:
    def wrap(text: str, prec: int) -> str:
        return f"({text})" if prec < parent else text

    if isinstance(e, E.Col):
        return e.name
    if isinstance(e, E.Lit):
        return literal_text(e.value)
    if isinstance(e, E.Arith):
        p = _PREC[e.op]
        return wrap(f"{expr_text(e.left, p)} {e.op} {expr_text(e.right, p + 1)}", p)
    if isinstance(e, E.Compare):
        p = _PREC["CMP"]
        return wrap(f"{expr_text(e.left, p + 1)} {e.op} {expr_text(e.right, p + 1)}", p)
    if isinstance(e, E.And):
        return wrap(" AND ".join(expr_text(a, 3) for a in e.args), 2)
    if isinstance(e, E.Or):
        return wrap(" OR ".join(expr_text(a, 2) for a in e.args), 1)
    if isinstance(e, E.Not):
        return wrap(f"NOT {expr_text(e.arg, 4)}", 3)
    if isinstance(e, E.Neg):
        return f"-{expr_text(e.arg, 7)}"
    if isinstance(e, E.IsNull):
        return wrap(f"{expr_text(e.arg, 5)} IS {'NOT ' if e.negated else ''}NULL", 4)
    if isinstance(e, E.InList):
        vals = ", ".join(expr_text(v) for v in e.values)
        return wrap(f"{expr_text(e.arg, 5)} {'NOT ' if e.negated else ''}IN ({vals})", 4)
    if isinstance(e, E.Like):
        kw = "ILIKE" if e.case_insensitive else "LIKE"
        return wrap(f"{expr_text(e.arg, 5)} {'NOT ' if e.negated else ''}{kw} {literal_text(e.pattern)}", 4)
    if isinstance(e, E.Case):
        parts = " ".join(f"WHEN {expr_text(c)} THEN {expr_text(v)}" for c, v in e.whens)
        default = f" ELSE {expr_text(e.default)}" if e.default is not None else ""
        return f"CASE {parts}{default} END"
    if isinstance(e, E.Cast):
        return f"CAST({expr_text(e.arg)} AS {e.to})"
    if isinstance(e, E.Extract):
        return f"EXTRACT({e.part.upper()} FROM {expr_text(e.arg)})"
    if isinstance(e, E.Func):
        return f"{e.name}({', '.join(expr_text(a) for a in e.args)})"
    raise TypeError(f"no text form for {type(e).__name__}")


def op_args(op: O.Op, ref: dict[int, str]) -> str:
    """The argument list of one operator line, inputs written as %N."""
    r = lambda o: ref[id(o)]  # noqa: E731
    if isinstance(op, O.Scan):
        cols = ", ".join(c.name if c.name == c.source else f"{c.source} AS {c.name}" for c in op.columns)
        return f"{op.table} [{cols}]"
    if isinstance(op, O.Filter):
        return f"{r(op.input)}, {expr_text(op.predicate)}"
    if isinstance(op, O.Values):
        shown = ", ".join("(" + ", ".join(literal_text(v) for v in row) + ")" for row in op.rows[:3])
        return f"{len(op.rows)} rows" + (f": {shown}" if shown else "") + (", ..." if len(op.rows) > 3 else "")
    if isinstance(op, O.Project):
        items = ", ".join(name if isinstance(e, E.Col) and e.name == name else f"{name} := {expr_text(e)}"
                          for name, e in op.exprs)
        return f"{r(op.input)}, [{items}]"
    if isinstance(op, O.Join):
        cond = [f"{a} = {b}" for a, b in zip(op.left_keys, op.right_keys)]
        if op.residual is not None:
            # joined to the keys with AND: parenthesise a top-level OR
            cond.append(expr_text(op.residual, _PREC["AND"] + 1 if cond else 0))
        extra = ", null_aware" if op.null_aware else ""
        on = f", on {' AND '.join(cond)}" if cond else ""
        return f"{op.kind}, {r(op.left)}, {r(op.right)}{on}{extra}"
    if isinstance(op, O.Aggregate):
        aggs = ", ".join(f"{n} := {c}" for n, c in op.aggs)
        return f"{r(op.input)}, by [{', '.join(op.keys)}], [{aggs}]"
    if isinstance(op, (O.Union, O.Intersect, O.Except)):
        return f"{r(op.left)}, {r(op.right)}{'' if op.distinct else ', all'}"
    if isinstance(op, O.Sort):
        return f"{r(op.input)}, [{', '.join(str(k) for k in op.keys)}]"
    if isinstance(op, O.Window):
        calls = ", ".join(f"{n} := {c}" for n, c in op.calls)
        return (f"{r(op.input)}, partition [{', '.join(op.partition_by)}], "
                f"order [{', '.join(str(k) for k in op.order_by)}], [{calls}]")
    if isinstance(op, O.Limit):
        return f"{r(op.input)}, {op.count}" + (f", offset {op.offset}" if op.offset else "")
    if isinstance(op, O.LoopVar):
        return op.name
    if isinstance(op, O.UDF):
        return f"{r(op.input)}, {op.module}:{op.qualname}, {op.mode}"
    if isinstance(op, O.Sink):
        return f"{r(op.input)}, {op.name}" + (f", {op.path!r}" if op.path else "")
    if isinstance(op, O.While):
        return ", ".join(f"{n} := {r(i)}" for n, i in zip(op.names, op.init))
    return ", ".join(r(i) for i in op.inputs)


def ops_text(roots: list[O.Op], indent: str = "", ref: dict[int, str] | None = None,
             counter: list[int] | None = None, with_schema: bool = True) -> list[str]:
    ref = {} if ref is None else ref
    counter = [0] if counter is None else counter
    lines: list[str] = []
    seen: set[int] = set()
    for root in roots:
        for op in O.walk(root, stop_at={i for i in ref}):
            if id(op) in ref or id(op) in seen:
                continue
            seen.add(id(op))
            name = f"%{counter[0]}"
            counter[0] += 1
            ref[id(op)] = name
            line = f"{indent}{name} = {op.opname}({op_args(op, ref)})"
            if with_schema and not isinstance(op, O.Sink):
                line += f" -> {op.schema}"
            lines.append(line)
            if isinstance(op, O.While):
                lines.extend(while_body_text(op, indent, ref, counter, with_schema))
    return lines


def while_body_text(op: O.While, indent: str, ref: dict[int, str], counter: list[int],
                    with_schema: bool) -> list[str]:
    stop = []
    if op.max_iter is not None:
        stop.append(f"max_iter {op.max_iter}")
    if op.fixpoint:
        stop.append("fixpoint")
    lines = [f"{indent}  loop {ref[id(op)]} ({', '.join(stop) or 'stop relation'}), result {op.result}:"]
    roots = list(op.body) + ([op.stop] if op.stop is not None else [])
    lines += ops_text(roots, indent + "    ", ref, counter, with_schema)
    for name, b in zip(op.names, op.body):
        lines.append(f"{indent}    next {name} = {ref[id(b)]}")
    if op.stop is not None:
        lines.append(f"{indent}    stop when {ref[id(op.stop)]}")
    return lines
