"""Edge lists in, normalised relations out: the graph's invariant inputs.

Every vertex program starts from the same relations, built once outside its
loop: the edges as (src, dst[, weight]) checked at plan time (columns
present, ids of one type, numeric weights) and at run time (no NULL
endpoints, no negative weights where that matters; see checks.py), the
vertex set, and per-vertex degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.schema import suggest
from musketeer.ir.types import FLOAT64, INT64, DataError, DataType, common_type

from musketeer.frontends.linq import Dataset

CHECKS_MODULE = "musketeer.frontends.graph.checks"


def _column(data: Dataset, name: str, role: str, param: str) -> None:
    if not isinstance(name, str) or name not in data.schema:
        raise DataError(f"the {role} has no column {name!r}{suggest(str(name), data.columns)} "
                        f"(its columns: {', '.join(data.columns)}); name the column with {param}=...")


@dataclass(frozen=True)
class Graph:
    """The normalised inputs of a vertex program."""

    edges: O.Op  # (src, dst[, weight]), checked
    vertices: O.Op  # (id): every vertex, once
    weighted: bool

    @property
    def id_type(self) -> DataType:
        return self.vertices.schema.dtype("id")


def prepare(edges: Dataset, *, src: str = "src", dst: str = "dst", weight: str | None = None,
            directed: bool = True, vertices: Dataset | None = None, vertex_id: str = "id",
            nonnegative: bool = False, validate: bool = True) -> Graph:
    """Check and normalise an edge list (see the module docstring)."""
    if not isinstance(edges, Dataset):
        raise DataError(f"a graph needs its edges as a Dataset (e.g. read('edges.csv')), got {type(edges).__name__}")
    _column(edges, src, "edge list", "src")
    _column(edges, dst, "edge list", "dst")
    st, dt_ = edges.schema.dtype(src), edges.schema.dtype(dst)
    if common_type(st, dt_) is None:
        raise DataError(f"edge list: source column {src!r} is {st} but destination column {dst!r} is {dt_}; "
                        "vertex ids must have one type")
    if st.kind == "float64" or dt_.kind == "float64":
        raise DataError(f"edge list: vertex ids ({src!r}: {st}, {dst!r}: {dt_}) must be integers or strings, "
                        "not floats")
    exprs: list[tuple[str, E.Expr]] = [("src", E.Col(src)), ("dst", E.Col(dst))]
    if weight is not None:
        _column(edges, weight, "edge list", "weight")
        wt = edges.schema.dtype(weight)
        if not wt.is_numeric:
            raise DataError(f"edge list: weight column {weight!r} is {wt}, not a number (does the file have "
                            "non-numeric weights?)")
        exprs.append(("weight", E.Col(weight) if wt.kind != "decimal" else E.Cast(E.Col(weight), FLOAT64)))
    op: O.Op = O.Project(edges.op, tuple(exprs))
    id_type = common_type(st, dt_)
    if st != dt_:
        op = O.Project(op, tuple((n, E.Cast(E.Col(n), id_type) if n in ("src", "dst") else E.Col(n))
                                 for n in op.schema.names))
    if validate:
        check = "check_nonnegative_edges" if nonnegative and weight is not None else "check_edges"
        op = O.UDF(op, CHECKS_MODULE, check, "partition", op.schema)
    if not directed:
        reverse = O.Project(op, tuple((n, E.Col({"src": "dst", "dst": "src"}.get(n, n))) for n in op.schema.names))
        op = O.Union(op, reverse, distinct=False)
    ends: O.Op = O.Union(O.Project(op, (("id", E.Col("src")),)), O.Project(op, (("id", E.Col("dst")),)),
                         distinct=False)
    if vertices is not None:
        if not isinstance(vertices, Dataset):
            raise DataError(f"vertices= needs a Dataset, got {type(vertices).__name__}")
        _column(vertices, vertex_id, "vertex list", "vertex_id")
        vt = vertices.schema.dtype(vertex_id)
        if common_type(vt, id_type) is None:  # type: ignore[arg-type]
            raise DataError(f"vertex list: id column {vertex_id!r} is {vt} but the edges' ids are {id_type}")
        ends = O.Union(O.Project(vertices.op, (("id", E.Col(vertex_id)),)), ends, distinct=False)
    return Graph(op, O.Distinct(ends), weight is not None)


def degrees(graph: Graph, wanted: set[str]) -> O.Op:
    """(id, <wanted attributes>) for every vertex: out_degree, in_degree,
    out_weight (sum of out-edge weights; out_degree when unweighted),
    num_vertices. Vertices without edges get 0."""
    op = graph.vertices
    for side, key, attrs in (("out", "src", ("out_degree", "out_weight")), ("in", "dst", ("in_degree",))):
        needed = [a for a in attrs if a in wanted]
        if not needed:
            continue
        aggs: list[tuple[str, E.AggCall]] = []
        for a in needed:
            if a.endswith("_degree") or not graph.weighted:
                aggs.append((f"__{a}", E.AggCall("count_star")))
            else:
                aggs.append((f"__{a}", E.AggCall("sum", "weight")))
        per = O.Aggregate(graph.edges, (key,), tuple(aggs))
        joined = O.Join(op, per, "left", ("id",), (key,))
        keep = [(n, E.Col(n)) for n in op.schema.names]
        keep += [(a, E.Func("coalesce", (E.Col(f"__{a}"), _zero(per.schema.dtype(f"__{a}"))))) for a in needed]
        op = O.Project(joined, tuple(keep))
    if "num_vertices" in wanted:
        n = O.Aggregate(graph.vertices, (), (("num_vertices", E.AggCall("count_star")),))
        op = O.Join(op, n, "cross")
    return op


def _zero(dtype: DataType) -> E.Lit:
    return E.Lit(0.0, FLOAT64) if dtype.kind == "float64" else E.Lit(0, INT64)
