"""Vertex-centric programs (gather-apply-scatter) lowered to relational algebra.

A Pregel/GAS superstep is a handful of relational operators, which is why a
graph algorithm needs no graph engine here. With the vertex state
S(id, value, attributes) as the loop variable and the edges E(src, dst[,
weight]) as a loop-invariant input, one iteration is:

    scatter   M = Project(Join(E, Filter(S, active), src = id), dst, msg := scatter)
    gather    G = Aggregate(M, by dst, gathered := gather(msg))
    apply     S' = Project(Join(S, G, left, id = dst) [x aggregators], id, value := apply, ...)

run inside an `ir.While` that stops at `max_iter`, at a fixpoint (no vertex
changed) or when the total (or mean, or largest) change |value' - value|
drops below `tolerance`. Global "aggregators" (Pregel's name; e.g. the rank
mass of dangling vertices in PageRank) are one-row aggregates over S,
cross-joined into the apply step.

User expressions are column expressions (or lambdas returning them) over
these names:

- init:        id, out_degree, in_degree, out_weight, num_vertices
- scatter:     src, dst, weight (weighted graphs), and the *source* vertex's
               value, out_degree, in_degree, out_weight, num_vertices
- apply:       id, value, gathered (NULL, or `empty`, without messages), the
               vertex attributes and each aggregator by name
- active, aggregators: id, value and the vertex attributes

Only the attributes an expression reads are computed and carried.
"""

from __future__ import annotations

from typing import Any, Mapping

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.schema import Schema
from musketeer.ir.types import FLOAT64, INT64, DataType, IRError, common_type

from musketeer.frontends.graph.edges import CHECKS_MODULE, Graph, degrees, prepare
from musketeer.frontends.linq import Column, Dataset
from musketeer.frontends.linq.columns import AggMarker, display, literal

GATHERS = ("sum", "min", "max", "avg", "count")
NORMS = ("sum", "mean", "max")
ATTRIBUTES = ("out_degree", "in_degree", "out_weight", "num_vertices")
RESERVED = ("id", "value", "gathered", "src", "dst", "weight", *ATTRIBUTES)

#: How many times the expressions are re-typed while the value type settles.
MAX_TYPINGS = 4


def _probe(fields: list[tuple[str, DataType]]) -> Dataset:
    """A placeholder dataset with these columns, to lower expressions against."""
    return Dataset(O.LoopVar("probe", Schema.of(fields)))


class _Typed:
    """The user's expressions lowered against placeholder schemas, with the
    value type settled so that init and apply agree."""

    def __init__(self, graph: Graph, init: Any, scatter: Any, gather: str, apply: Any,
                 aggregators: Mapping[str, Any], active: Any, empty: Any) -> None:
        id_t = graph.id_type
        weight_t = graph.edges.schema.dtype("weight") if graph.weighted else INT64
        attrs = [("out_degree", INT64), ("in_degree", INT64), ("out_weight", weight_t), ("num_vertices", INT64)]
        self.init = _probe([("id", id_t), *attrs]).expr(init, "vertex_program(init=...)")
        vt = self.init.type_in(_probe([("id", id_t), *attrs]).schema)
        edge = [("src", id_t), ("dst", id_t)] + ([("weight", weight_t)] if graph.weighted else [])
        for _ in range(MAX_TYPINGS):
            state = _probe([("id", id_t), ("value", vt), *attrs])
            self.active = state.expr(active, "vertex_program(active=...)") if active is not None else None
            self.aggregators = {n: state.expr(c, f"vertex_program(aggregators={n!r})", allow_aggregates=True)
                                for n, c in aggregators.items()}
            for n, e in self.aggregators.items():
                if not any(isinstance(x, AggMarker) for x in e.walk()):
                    raise IRError(f"vertex_program: aggregator {n!r} ({display(e)}) is not an aggregate; "
                                  "use e.g. col('value').sum()")
            agg_types = [(n, e.type_in(state.schema)) for n, e in self.aggregators.items()]
            source = _probe(edge + [("value", vt), *attrs])
            self.scatter = source.expr(scatter, "vertex_program(scatter=...)")
            mt = self.scatter.type_in(source.schema)
            gt = E.AggCall(gather, "msg").result_type(Schema.of([("msg", mt)]))
            if empty is not None:
                et = literal(empty).dtype
                gt = common_type(gt, et) or gt
            target = _probe([("id", id_t), ("value", vt), *attrs, ("gathered", gt), *agg_types])
            self.apply = target.expr(apply, "vertex_program(apply=...)")
            at = self.apply.type_in(target.schema)
            if at == vt:
                break
            common = common_type(vt, at)
            if common is None:
                raise IRError(f"vertex_program: init makes values {vt} but apply makes them {at}; cast one of them")
            if common == vt:
                self.apply = E.Cast(self.apply, vt)
                break
            vt = common
        else:
            raise IRError("vertex_program: the value type keeps changing between init and apply; cast apply's "
                          "result (e.g. .cast('float64'))")
        if self.init.type_in(_probe([("id", id_t), *attrs]).schema) != vt:
            self.init = E.Cast(self.init, vt)
        self.value_type = vt

    def attributes(self) -> list[str]:
        """Vertex attributes the loop reads (they ride along in the state)."""
        used: set[str] = set()
        for e in [self.scatter, self.apply, *self.aggregators.values()] + ([self.active] if self.active else []):
            used |= e.columns()
        return [a for a in ATTRIBUTES if a in used]


def _stop(step: O.Op, tolerance: float, norm: str) -> O.Op:
    """TRUE when the change between old and new values is below `tolerance`,
    or when there are no vertices at all: an empty graph has nothing left to
    change (networkx returns {} at once), while its change, an aggregate over
    no rows, is NULL and would never drop below anything."""
    delta = O.Project(step, (("delta", E.Func("abs", (E.Arith("-", E.Col("value"), E.Col("__old")),))),))
    total = O.Aggregate(delta, (), (("change", E.AggCall("max" if norm == "max" else "sum", "delta")),
                                    ("n", E.AggCall("count_star"))))
    bound: E.Expr = E.Lit(float(tolerance), FLOAT64)
    if norm == "mean":  # sum < n * tol, exactly networkx's test for PageRank
        bound = E.Arith("*", E.Col("n"), bound)
    empty = E.Compare("=", E.Col("n"), E.Lit(0, INT64))
    return O.Project(total, (("stop", E.Or((empty, E.Compare("<", E.Col("change"), bound)))),))


def _require_vertex(graph: Graph, vertex: Any) -> O.Op:
    """A one-row relation (__found, __source) that fails at run time (a
    checks.py UDF) when `vertex` is not among the graph's vertices; joined
    into the initial state so every engine evaluates it before the loop."""
    wanted = E.Compare("=", E.Col("id"), literal(vertex))
    hits = O.Project(graph.vertices, (("__hit", E.Case(((wanted, E.Lit(1, INT64)),), E.Lit(0, INT64))),))
    found = O.Aggregate(hits, (), (("__found", E.AggCall("sum", "__hit")),))
    named = O.Project(found, (("__found", E.Col("__found")), ("__source", literal(vertex))))
    return O.UDF(named, CHECKS_MODULE, "check_source_vertex", "partition", named.schema)


def vertex_program(edges: Dataset, *, init: Any, scatter: Any, gather: str, apply: Any,
                   aggregators: Mapping[str, Any] | None = None, active: Any = None, empty: Any = None,
                   fixpoint: bool = False, tolerance: float | None = None, norm: str = "sum",
                   max_iter: int | None = None, src: str = "src", dst: str = "dst", weight: str | None = None,
                   directed: bool = True, vertices: Dataset | None = None, vertex_id: str = "id",
                   value_name: str = "value", nonnegative: bool = False, validate: bool = True,
                   name: str = "vertices", must_contain: Any = None) -> Dataset:
    """Run a vertex program over an edge list; the result is (id, value_name)
    for every vertex. See the module docstring for the expression names.

    Stop rules (at least one): `fixpoint` (no vertex changed), `tolerance`
    with `norm` sum|mean|max of |new - old|, `max_iter`. A loop that reaches
    max_iter before its other rule holds warns and reports converged=False
    in the run's metrics. `must_contain` names a vertex the graph must have
    (sssp's source): checked when the workflow runs, a DataError otherwise.
    """
    if gather not in GATHERS:
        raise IRError(f"vertex_program: gather must be one of {', '.join(GATHERS)}, not {gather!r}")
    if norm not in NORMS:
        raise IRError(f"vertex_program: norm must be one of {', '.join(NORMS)}, not {norm!r}")
    if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
                                  or tolerance <= 0):
        raise IRError(f"vertex_program: tolerance must be a number > 0, got {tolerance!r}")
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1):
        raise IRError(f"vertex_program: max_iter must be a whole number >= 1, got {max_iter!r}")
    if not fixpoint and tolerance is None and max_iter is None:
        raise IRError("vertex_program needs a stop rule: fixpoint=True, tolerance=... or max_iter=...")
    aggregators = dict(aggregators or {})
    for n in aggregators:
        if n in RESERVED or not isinstance(n, str):
            raise IRError(f"vertex_program: aggregator name {n!r} is taken (reserved: {', '.join(RESERVED)})")
    graph = prepare(edges, src=src, dst=dst, weight=weight, directed=directed, vertices=vertices,
                    vertex_id=vertex_id, nonnegative=nonnegative, validate=validate)
    typed = _Typed(graph, init, scatter, gather, apply, aggregators, active, empty)
    attrs = typed.attributes()

    info = degrees(graph, set(attrs) | typed.init.columns())
    if must_contain is not None:
        info = O.Join(info, _require_vertex(graph, must_contain), "cross")
    carried = [(a, E.Col(a)) for a in attrs]
    start = O.Project(info, (("id", E.Col("id")), ("value", typed.init), *carried))
    state = O.LoopVar(name, start.schema)

    # scatter: one message per edge whose source is active
    senders: O.Op = O.Filter(state, typed.active) if typed.active is not None else state
    edge_cols = ["src", "dst"] + (["weight"] if "weight" in typed.scatter.columns() else [])
    edge_op = graph.edges if list(graph.edges.schema.names) == edge_cols else \
        O.Project(graph.edges, tuple((c, E.Col(c)) for c in edge_cols))
    paired = O.Join(edge_op, senders, "inner", ("src",), ("id",))
    messages = O.Project(paired, (("dst", E.Col("dst")), ("msg", typed.scatter)))
    # gather: combine the messages per destination
    gathered = O.Aggregate(messages, ("dst",), (("gathered", E.AggCall(gather, "msg")),))
    # apply: every vertex, with its messages (if any) and the aggregators
    joined: O.Op = O.Join(state, gathered, "left", ("id",), ("dst",))
    if typed.aggregators:
        globals_ = Dataset(state).agg(**{n: Column(e) for n, e in typed.aggregators.items()})
        joined = O.Join(joined, globals_.op, "cross")
    new_value = typed.apply
    if empty is not None:
        new_value = E.substitute(new_value, {"gathered": E.Func("coalesce", (E.Col("gathered"), literal(empty)))})
    keep_old = [("__old", E.Col("value"))] if tolerance is not None else []
    step = O.Project(joined, (("id", E.Col("id")), ("value", new_value), *carried, *keep_old))
    body = O.Project(step, tuple((n, E.Col(n)) for n in start.schema.names)) if keep_old else step
    stop = _stop(step, tolerance, norm) if tolerance is not None else None
    loop = O.While((start,), (name,), (body,), name, max_iter, stop, fixpoint)
    return edges._new(O.Project(loop, (("id", E.Col("id")), (value_name, E.Col("value")))))
