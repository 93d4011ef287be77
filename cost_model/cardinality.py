"""Cardinality estimation: how many rows (and bytes) each operator produces.

Classic System R style rules, kept deliberately simple because the planner
only needs the right order of magnitude to choose between engines:

- Scan: exact row count from the Parquet footer (or catalog), CSV by size;
- Filter: selectivity per predicate shape (equality 1/NDV, ranges by the
  sampled min/max, LIKE, IN, IS NULL; AND multiplies, OR adds minus overlap,
  NOT complements); unknown shapes fall back to DEFAULT_SELECTIVITY;
- Join: |L|*|R| / max(NDV(l), NDV(r)) per equi-key (independence assumed
  across keys, capped at the product of NDVs), outer joins keep their
  preserved side, semi/anti split the left side by key containment;
- Aggregate / Distinct: product of the key NDVs, capped by the input rows;
- While: the body is estimated with each loop variable the size of its
  initial value; the loop runs `max_iter` times, or with a data-dependent
  stop rule min(max_iter, DEFAULT_ITERATIONS).

Key NDVs are traced back through Projects/Filters/Joins to the Scan column
they come from and sampled from the file (see stats.py).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import SupportsFloat, cast

from musketeer.cost_model.stats import ColumnStats, column_stats, file_stats
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import DataType
from musketeer.ir.workflow import Workflow

DEFAULT_SELECTIVITY = 1 / 3  # a comparison we cannot reason about
EQ_SELECTIVITY = 0.05  # equality without known NDV
LIKE_SELECTIVITY = 0.1
NULL_SELECTIVITY = 0.02
DEFAULT_ITERATIONS = 20  # loops stopped by a data-dependent rule (capped by max_iter)
DEFAULT_ROWS = 1000  # a table whose size we cannot learn

#: Bytes per value of each IR type in memory (strings: the sampled width).
TYPE_WIDTH: dict[str, float] = {
    "int64": 8, "float64": 8, "decimal": 8, "bool": 1, "string": 24,
    "date": 4, "timestamp": 8, "interval": 16, "null": 1,
}


@dataclass(frozen=True)
class Estimate:
    """Estimated output of one operator."""

    rows: float
    row_bytes: float

    @property
    def bytes(self) -> float:
        return self.rows * self.row_bytes


@dataclass(frozen=True)
class LoopEstimate:
    """A While's body per iteration, and how many iterations are assumed."""

    iterations: int
    body: dict[int, Estimate]
    ops: tuple[O.Op, ...]  # the body's operators, inputs first


class Cardinality:
    """Estimates for every operator of a workflow (While bodies included).

    `overrides` maps an operator id to a known row count (a stage already
    ran), which then propagates to everything downstream.
    """

    def __init__(self, workflow: Workflow, overrides: dict[int, float] | None = None) -> None:
        self.workflow = workflow
        self.overrides = dict(overrides or {})
        self.est: dict[int, Estimate] = {}
        self.loops: dict[int, LoopEstimate] = {}
        self._origin: dict[tuple[int, str], ColumnStats | None] = {}
        self._unique: dict[tuple[int, str], bool] = {}
        self._var_init: dict[int, O.Op] = {}  # LoopVar id -> the loop's initial value for it
        for op in workflow.ops():
            self._estimate(op)

    def __getitem__(self, op: O.Op) -> Estimate:
        return self.est[id(op)]

    # --- per operator ---------------------------------------------------------
    def _estimate(self, op: O.Op) -> Estimate:
        if id(op) in self.est:
            return self.est[id(op)]
        rows = self._rows(op)
        if id(op) in self.overrides:
            rows = self.overrides[id(op)]
        e = Estimate(max(0.0, rows), self._row_bytes(op))
        self.est[id(op)] = e
        return e

    def rows(self, op: O.Op) -> float:
        return self._estimate(op).rows

    def _rows(self, op: O.Op) -> float:
        if isinstance(op, O.Scan):
            fs = file_stats(op.path, op.format)
            return float(fs.rows) if fs is not None else DEFAULT_ROWS
        if isinstance(op, O.Values):
            return float(len(op.rows))
        if isinstance(op, O.Filter):
            return self.rows(op.input) * self.selectivity(op.predicate, op.input)
        if isinstance(op, (O.Project, O.Sort, O.Sink, O.UDF, O.Window)):
            return self.rows(op.input)
        if isinstance(op, O.Limit):
            n = max(0.0, self.rows(op.input) - op.offset)
            return n if op.count is None else min(float(op.count), n)
        if isinstance(op, O.Join):
            return self._join_rows(op)
        if isinstance(op, O.Aggregate):
            if not op.keys:
                return 1.0
            return self._group_rows(op.input, op.keys)
        if isinstance(op, O.Distinct):
            return self._group_rows(op.input, op.schema.names)
        if isinstance(op, O.Union):
            total = self.rows(op.left) + self.rows(op.right)
            return total if not op.distinct else self._group_rows(op.left, op.schema.names, cap=total)
        if isinstance(op, O.Intersect):
            return min(self.rows(op.left), self.rows(op.right)) / 2
        if isinstance(op, O.Except):
            return self.rows(op.left) / 2
        if isinstance(op, O.While):
            return self._loop_rows(op)
        if isinstance(op, O.LoopVar):  # only reached inside loop estimation
            return DEFAULT_ROWS
        return self.rows(op.inputs[0]) if op.inputs else DEFAULT_ROWS

    def _row_bytes(self, op: O.Op) -> float:
        total = 0.0
        for f in op.schema:
            st = self.column(op, f.name) if f.dtype.kind == "string" else None
            total += st.width if st is not None else _type_width(f.dtype)
        return max(total, 1.0)

    # --- joins, groups, loops ---------------------------------------------------
    def _join_rows(self, op: O.Join) -> float:
        lrows, rrows = self.rows(op.left), self.rows(op.right)
        if op.kind == "cross" or not op.left_keys:
            inner = lrows * rrows
        else:
            denom = 1.0
            for lk, rk in zip(op.left_keys, op.right_keys):
                denom *= max(self.ndv(op.left, lk), self.ndv(op.right, rk), 1.0)
            inner = lrows * rrows / denom
        if op.residual is not None:
            # The residual's column stats come from op itself: give op a
            # provisional size first so looking them up cannot recurse.
            self.est[id(op)] = Estimate(inner, 1.0)
            inner *= self.selectivity(op.residual, op)
            del self.est[id(op)]
        if op.kind in ("semi", "anti"):
            frac = 1.0
            for lk, rk in zip(op.left_keys, op.right_keys):
                frac *= min(1.0, self.ndv(op.right, rk) / max(self.ndv(op.left, lk), 1.0))
            if op.residual is not None:
                frac *= DEFAULT_SELECTIVITY * 2
            if not op.left_keys:
                frac = 0.5
            semi = lrows * min(1.0, frac)
            return semi if op.kind == "semi" else lrows - semi
        if op.kind == "left":
            return max(inner, lrows)
        if op.kind == "right":
            return max(inner, rrows)
        if op.kind == "full":
            return max(inner, lrows, rrows)
        return inner

    def _group_rows(self, op: O.Op, keys: tuple[str, ...], cap: float | None = None) -> float:
        rows = self.rows(op) if cap is None else cap
        groups = 1.0
        for k in keys:
            groups *= max(self.ndv(op, k), 1.0)
            if groups >= rows:
                return rows
        return min(groups, rows)

    def _loop_rows(self, op: O.While) -> float:
        # A data-dependent stop rule usually ends the loop long before its
        # max_iter, which is a safety bound (PageRank: 100, stops after ~15-30).
        data_stop = op.stop is not None or op.fixpoint
        if op.max_iter is None:
            iterations = DEFAULT_ITERATIONS
        else:
            iterations = min(op.max_iter, DEFAULT_ITERATIONS) if data_stop else op.max_iter
        body: dict[int, Estimate] = {}
        # Loop variables keep the size of their initial value; invariant
        # inputs are already estimated at the top level.
        for name, init in zip(op.names, op.init):
            for var in op.loop_vars().values():
                if var.name == name:
                    self.overrides.setdefault(id(var), self.rows(init))
                    self._var_init[id(var)] = init
        roots = list(op.body) + ([op.stop] if op.stop is not None else [])
        order: list[O.Op] = []
        seen: set[int] = set(id(f) for f in op.free_inputs)
        for r in roots:
            for b in O.walk(r, stop_at=set(seen)):
                if id(b) not in seen:
                    seen.add(id(b))
                    order.append(b)
        for b in order:
            body[id(b)] = self._estimate(b)
        self.loops[id(op)] = LoopEstimate(iterations, body, tuple(order))
        return self.rows(op.init[op.names.index(op.result)])

    # --- columns ---------------------------------------------------------------
    def column(self, op: O.Op, name: str) -> ColumnStats | None:
        """Sampled statistics of the Scan column `name` comes from, if any."""
        key = (id(op), name)
        if key not in self._origin:
            self._origin[key] = None  # guards against cycles through loops
            self._origin[key] = self._trace(op, name)
        return self._origin[key]

    def _trace(self, op: O.Op, name: str) -> ColumnStats | None:
        if isinstance(op, O.Scan):
            for c in op.columns:
                if c.name == name:
                    return column_stats(op.path, op.format, c.source)
            return None
        if isinstance(op, O.Project):
            for out, e in op.exprs:
                if out == name:
                    return self.column(op.input, e.name) if isinstance(e, E.Col) else None
            return None
        if isinstance(op, (O.Filter, O.Sort, O.Limit, O.Distinct, O.Sink, O.Aggregate, O.Window)):
            return self.column(op.input, name) if name in op.input.schema else None
        if isinstance(op, O.Join):
            for side in (op.left, op.right):
                if name in side.schema:
                    return self.column(side, name)
            return None
        if isinstance(op, (O.Union, O.Intersect, O.Except)):
            i = op.schema.names.index(name)
            return self.column(op.left, op.left.schema.names[i])
        if isinstance(op, O.While):
            init = op.init[op.names.index(op.result)]
            return self.column(init, name) if name in init.schema else None
        if isinstance(op, O.LoopVar) and id(op) in self._var_init:
            init = self._var_init[id(op)]
            return self.column(init, name) if name in init.schema else None
        if isinstance(op, O.UDF) and op.out_schema == op.input.schema:
            # Opaque, but schema-preserving (a validating or cleaning pass,
            # e.g. the graph frontend's edge check): best guess, same values.
            return self.column(op.input, name)
        return None

    def unique(self, op: O.Op, name: str) -> bool:
        """Is `name` a key of op's output (no value twice)? True for the only
        group key of an Aggregate or the only column of a Distinct, and kept
        through operators that do not duplicate rows: renames, filters,
        sorts, limits, a loop variable whose initial value has the key, a
        cross join with a single row, and a join's side whose rows each
        match at most one row of a unique key on the other side (which is how a vertex table stays keyed by id
        through PageRank's joins)."""
        key = (id(op), name)
        if key not in self._unique:
            self._unique[key] = False  # guards against cycles through loops
            self._unique[key] = self._is_unique(op, name)
        return self._unique[key]

    def _is_unique(self, op: O.Op, name: str) -> bool:
        if isinstance(op, O.Aggregate):
            return op.keys == (name,)
        if isinstance(op, O.Distinct):
            return op.schema.names == (name,) or list(op.schema.names) == [name]
        if isinstance(op, O.Project):
            for out, e in op.exprs:
                if out == name:
                    return isinstance(e, E.Col) and self.unique(op.input, e.name)
            return False
        if isinstance(op, (O.Filter, O.Sort, O.Limit, O.Sink, O.Window)):
            return name in op.input.schema and self.unique(op.input, name)
        if isinstance(op, O.LoopVar) and id(op) in self._var_init:
            init = self._var_init[id(op)]
            return name in init.schema and self.unique(init, name)
        if isinstance(op, O.While):
            init = op.init[op.names.index(op.result)]
            return name in init.schema and self.unique(init, name)
        if isinstance(op, O.Join) and (op.kind == "cross" or not op.left_keys):
            # joined with one row (a global aggregate such as a count): no duplication
            for side, other in ((op.left, op.right), (op.right, op.left)):
                if name in side.schema and self.rows(other) <= 1.0:
                    return self.unique(side, name)
            return False
        if isinstance(op, O.Join) and op.left_keys and op.kind in ("inner", "left", "semi", "anti"):
            if op.kind in ("semi", "anti"):
                return name in op.left.schema and self.unique(op.left, name)
            right_keyed = any(self.unique(op.right, rk) for rk in op.right_keys)
            return name in op.left.schema and right_keyed and self.unique(op.left, name)
        return False

    def ndv(self, op: O.Op, name: str) -> float:
        """Distinct values of column `name` in op's output, capped by its rows."""
        rows = self.rows(op)
        if self.unique(op, name):
            return max(1.0, rows)
        st = self.column(op, name)
        if st is None:
            return max(1.0, rows / 10)  # unknown: assume a few repeats per value
        return max(1.0, min(st.ndv, rows))

    # --- predicates ---------------------------------------------------------------
    def selectivity(self, pred: E.Expr, op: O.Op) -> float:
        """Fraction of op's output rows that satisfy `pred` (op provides column stats)."""
        return min(1.0, max(0.0, self._sel(pred, op)))

    def _sel(self, p: E.Expr, op: O.Op) -> float:
        if isinstance(p, E.And):
            return math.prod(self._sel(a, op) for a in p.args)
        if isinstance(p, E.Or):
            keep = 1.0
            for a in p.args:
                keep *= 1.0 - self._sel(a, op)
            return 1.0 - keep
        if isinstance(p, E.Not):
            return 1.0 - self._sel(p.arg, op)
        if isinstance(p, E.Lit):
            return 1.0 if p.value is True else 0.0
        if isinstance(p, E.IsNull):
            st = self._col_stats(p.arg, op)
            frac = st.null_frac if st is not None else NULL_SELECTIVITY
            return 1.0 - frac if p.negated else frac
        if isinstance(p, E.InList):
            s = min(1.0, len(p.values) * self._eq_sel(p.arg, op))
            return 1.0 - s if p.negated else s
        if isinstance(p, E.Like):
            s = _like_selectivity(p.pattern)
            return 1.0 - s if p.negated else s
        if isinstance(p, E.Compare):
            return self._compare_sel(p, op)
        return DEFAULT_SELECTIVITY

    def _col_stats(self, e: E.Expr, op: O.Op) -> ColumnStats | None:
        return self.column(op, e.name) if isinstance(e, E.Col) and e.name in op.schema else None

    def _eq_sel(self, e: E.Expr, op: O.Op) -> float:
        if isinstance(e, E.Col) and e.name in op.schema:
            if self.column(op, e.name) is not None:
                return 1.0 / self.ndv(op, e.name)
        return EQ_SELECTIVITY

    def _compare_sel(self, p: E.Compare, op: O.Op) -> float:
        left, right, cmp = p.left, p.right, p.op
        if isinstance(left, E.Lit) and not isinstance(right, E.Lit):
            left, right, cmp = right, left, _FLIP.get(cmp, cmp)
        if cmp == "=":
            if isinstance(left, E.Col) and isinstance(right, E.Col):
                return 1.0 / max(self.ndv(op, left.name) if left.name in op.schema else 1.0,
                                 self.ndv(op, right.name) if right.name in op.schema else 1.0)
            return self._eq_sel(left, op)
        if cmp == "<>":
            return 1.0 - self._eq_sel(left, op)
        if isinstance(right, E.Lit):
            st = self._col_stats(left, op)
            frac = _range_fraction(st, right.value) if st is not None else None
            if frac is not None:
                return frac if cmp in ("<", "<=") else 1.0 - frac
        return DEFAULT_SELECTIVITY


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _as_number(v: object) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dt.datetime):
        return v.timestamp()
    if isinstance(v, dt.date):
        return float(v.toordinal())
    try:
        return float(cast(SupportsFloat, v))  # decimals
    except (TypeError, ValueError):
        return None


def _range_fraction(st: ColumnStats, value: object) -> float | None:
    """Fraction of values below `value`, assuming a uniform spread in [min, max]."""
    lo, hi, x = _as_number(st.min), _as_number(st.max), _as_number(value)
    if lo is None or hi is None or x is None:
        return None
    if hi <= lo:
        return 0.5
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def _like_selectivity(pattern: str) -> float:
    """Fixed text narrows more than wildcards: 'abc%' is rarer than '%a%'."""
    fixed = sum(1 for ch in pattern if ch not in "%_")
    if "%" not in pattern and "_" not in pattern:
        return EQ_SELECTIVITY
    return max(0.01, min(0.5, LIKE_SELECTIVITY * (4 / max(fixed, 1)) ** 0.5))


def _type_width(t: DataType) -> float:
    return TYPE_WIDTH.get(t.kind, 8.0)
