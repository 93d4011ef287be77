"""Lowering `Dataset.join` to one `ir.operators.Join`.

The IR wants equi-key pairs, an optional residual predicate and unique
column names across both inputs. Users write `on="k"`, `on=[("a", "b")]`,
`left_on=/right_on=`, or a predicate (`orders.custkey == customers.id`,
`lambda l, r: (l.k == r.k) & (l.t < r.t)`); equalities between one column of
each side become keys, everything else the residual.

Names: a key named alike on both sides appears once in the output (SQL
USING; for a full join it is COALESCE(left, right)). Any other name on both
sides is an error unless `suffixes` says how to rename, because silently
inventing `x_y` names makes later column references guesswork.
"""

from __future__ import annotations

from typing import Any, Sequence

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.schema import suggest

from musketeer.frontends.linq.columns import Column, Ref, coerce_literals, display, has_aggregate, to_column
from musketeer.frontends.linq.dataset import Dataset, Lineage, Row, call_user, fresh_name
from musketeer.frontends.linq.errors import LinqError

KINDS = {"inner": "inner", "left": "left", "left_outer": "left", "right": "right", "right_outer": "right",
         "full": "full", "outer": "full", "full_outer": "full", "semi": "semi", "left_semi": "semi",
         "anti": "anti", "left_anti": "anti", "cross": "cross"}

LEFT, RIGHT = -1, -2  # Ref origins standing for "the left input" / "the right input"


def _names(value: Any, what: str) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) for n in names):
        raise LinqError(f"join(): {what} must be a column name or a list of names, got {value!r}")
    return names


def _key_pairs(on: Any, left_on: Any, right_on: Any) -> list[tuple[str, str]] | None:
    """Key pairs for the name-based forms of `on`, or None for a predicate."""
    if left_on is not None or right_on is not None:
        if on is not None:
            raise LinqError("join(): give either on= or left_on=/right_on=, not both")
        if left_on is None or right_on is None:
            raise LinqError("join(): left_on= and right_on= go together")
        lk, rk = _names(left_on, "left_on"), _names(right_on, "right_on")
        if len(lk) != len(rk):
            raise LinqError(f"join(): left_on has {len(lk)} columns, right_on has {len(rk)}")
        return list(zip(lk, rk))
    if on is None:
        return []
    if isinstance(on, str):
        return [(on, on)]
    if isinstance(on, (list, tuple)) and on and all(
            isinstance(k, str) or (isinstance(k, tuple) and len(k) == 2 and all(isinstance(x, str) for x in k))
            for k in on):
        return [(k, k) if isinstance(k, str) else (k[0], k[1]) for k in on]
    if isinstance(on, Column) or callable(on):
        return None
    raise LinqError(f"join(): on= must be a column name, a list of names or (left, right) pairs, a predicate "
                    f"or a function (l, r) -> predicate; got {on!r}")


def _side_of(ref: Ref | E.Col, left: Dataset, right: Dataset) -> Ref:
    """The column as Ref(name, LEFT|RIGHT) in the inputs' own names."""
    if isinstance(ref, Ref) and ref.origin in (LEFT, RIGHT):
        return ref
    if isinstance(ref, E.Col):
        sides = [s for s, d in ((LEFT, left), (RIGHT, right)) if ref.name in d.schema]
        if len(sides) == 1:
            return Ref(ref.name, sides[0])
        if not sides:
            known = list(left.columns) + list(right.columns)
            raise LinqError(f"join(): unknown column {ref.name!r}{suggest(ref.name, known)}")
        raise LinqError(f"join(): col({ref.name!r}) is on both sides; write on=lambda l, r: l.{ref.name} == "
                        f"r.{ref.name} (or use the datasets' attributes)")
    found = []
    for side, d in ((LEFT, left), (RIGHT, right)):
        if ref.origin in d._lineage:
            found.append((side, d._lineage[ref.origin]))
    if len(found) != 1 or found[0][1] is None:
        why = "is on both sides (a self-join)" if found else "belongs to neither input"
        raise LinqError(f"join(): column {ref.name!r} {why}; write on=lambda l, r: ... to say which side")
    side, mapping = found[0]
    assert mapping is not None
    if ref.name not in mapping:
        raise LinqError(f"join(): column {ref.name!r} did not survive to the joined dataset")
    return Ref(mapping[ref.name], side)


def _predicate(on: Any, left: Dataset, right: Dataset) -> E.Expr:
    if not isinstance(on, Column):
        rows = [Row(left.schema, LEFT, (left.op,)), Row(right.schema, RIGHT, (right.op,))]
        on = call_user(on, rows, "join(on=...)")
    c = to_column(on)
    if has_aggregate(c.expr):
        raise LinqError(f"join(): aggregate in the join condition ({display(c.expr)})")
    return E.transform(c.expr, lambda n: _side_of(n, left, right) if isinstance(n, (Ref, E.Col)) else n)


def _split(pred: E.Expr) -> tuple[list[tuple[str, str]], list[E.Expr]]:
    """Equalities of a left column and a right column -> key pairs; the rest stays."""
    pairs, rest = [], []
    for c in E.conjuncts(pred):
        if isinstance(c, E.Compare) and c.op == "=" and isinstance(c.left, Ref) and isinstance(c.right, Ref) \
                and {c.left.origin, c.right.origin} == {LEFT, RIGHT}:
            lref, rref = (c.left, c.right) if c.left.origin == LEFT else (c.right, c.left)
            pairs.append((lref.name, rref.name))
        else:
            rest.append(c)
    return pairs, rest


def _renamed(d: Dataset, mapping: dict[str, str]) -> O.Op:
    if all(k == v for k, v in mapping.items()):
        return d.op
    return O.Project(d.op, tuple((mapping[n], E.Col(n)) for n in d.columns))


def _merge_lineage(*parts: Lineage) -> Lineage:
    out: Lineage = {}
    for part in parts:
        for origin, mapping in part.items():
            out[origin] = None if origin in out and out[origin] != mapping else mapping
    return out


def lower_join(left: Dataset, right: Any, on: Any, how: str, left_on: Any, right_on: Any,
               suffixes: Sequence[str] | None) -> tuple[O.Op, Lineage]:
    """The join operator (plus renaming Projects) and the result's lineage."""
    if not isinstance(right, Dataset):
        raise LinqError(f"join() needs a Dataset to join with, got {type(right).__name__}")
    kind = KINDS.get(str(how).lower())
    if kind is None:
        raise LinqError(f"join(): unknown how={how!r}{suggest(str(how), KINDS)} "
                        "(inner, left, right, full, semi, anti, cross)")
    if suffixes is not None and (len(suffixes) != 2 or not all(isinstance(s, str) for s in suffixes)
                                 or suffixes[0] == suffixes[1]):
        raise LinqError(f"join(): suffixes must be two different strings, e.g. ('', '_r'); got {suffixes!r}")
    pairs = _key_pairs(on, left_on, right_on)
    rest: list[E.Expr] = []
    if pairs is None:
        pairs, rest = _split(_predicate(on, left, right))
    for lk, rk in pairs:
        for name, d, side in ((lk, left, "left"), (rk, right, "right")):
            if name not in d.schema:
                raise LinqError(f"join(): the {side} dataset has no column {name!r}{suggest(name, d.columns)} "
                                f"(columns: {', '.join(d.columns)})")
    if kind == "cross" and (pairs or rest):
        raise LinqError("join(how='cross') takes no condition")
    if kind != "cross" and not pairs and not rest:
        raise LinqError("join(): say how rows match with on=... (or use how='cross' for every pair)")

    # Output names: USING keys once; other clashes renamed by suffixes or refused.
    using = {lk for lk, rk in pairs if lk == rk}
    left_map = {n: n for n in left.columns}
    right_map = {n: n for n in right.columns}
    clashes = [n for n in right.columns if n in left.schema and n not in using]
    taken = set(left.columns) | set(right.columns)
    if kind in ("semi", "anti"):
        for n in right.columns:
            if n in left.schema:
                right_map[n] = fresh_name(f"__right_{n}", taken)
                taken.add(right_map[n])
    else:
        if clashes and suffixes is None:
            raise LinqError(
                f"join(): both datasets have column{'s' if len(clashes) > 1 else ''} "
                f"{', '.join(repr(c) for c in clashes)}; pass suffixes=('', '_r') or rename one side first "
                f"(e.g. other.rename({clashes[0]}='{clashes[0]}_r'))")
        for n in clashes:
            assert suffixes is not None
            left_map[n], right_map[n] = n + suffixes[0], n + suffixes[1]
        for n in using:
            right_map[n] = fresh_name(f"__right_{n}", taken)
            taken.add(right_map[n])
        outs = list(left_map.values()) + [v for k, v in right_map.items() if k not in using]
        dupes = sorted({n for n in outs if outs.count(n) > 1})
        if dupes:
            raise LinqError(f"join(): the suffixes {tuple(suffixes or ())!r} produce clashing names {dupes}; "
                            "choose other suffixes or rename first")

    def bind(n: E.Expr) -> E.Expr:
        if isinstance(n, Ref):
            return E.Col((left_map if n.origin == LEFT else right_map)[n.name])
        return n

    lop, rop = _renamed(left, left_map), _renamed(right, right_map)
    both = lop.schema.concat(rop.schema)
    residual = E.conjoin([coerce_literals(E.transform(r, bind), both) for r in rest])
    if residual is not None:
        residual.type_in(both)
    op: O.Op = O.Join(lop, rop, kind, tuple(left_map[lk] for lk, _ in pairs),
                      tuple(right_map[rk] for _, rk in pairs), residual)
    if kind in ("semi", "anti"):
        return op, left.lineage_through(left_map)
    if using:
        exprs: list[tuple[str, E.Expr]] = []
        for n in left.columns:
            if n in using:
                lcol, rcol = E.Col(n), E.Col(right_map[n])
                value = {"right": rcol, "full": E.Func("coalesce", (lcol, rcol))}.get(kind, lcol)
                exprs.append((n, value))
            else:
                exprs.append((left_map[n], E.Col(left_map[n])))
        exprs += [(right_map[n], E.Col(right_map[n])) for n in right.columns if n not in using]
        op = O.Project(op, tuple(exprs))
        right_map = {**right_map, **{n: n for n in using}}
    return op, _merge_lineage(left.lineage_through(left_map), right.lineage_through(right_map))
