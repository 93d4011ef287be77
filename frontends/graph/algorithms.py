"""Ready-made vertex programs: PageRank, single-source shortest paths and
connected components, each a few column expressions over `vertex_program`.
"""

from __future__ import annotations

from typing import Any

from musketeer.ir.types import IRError, common_type

from musketeer.frontends.graph.program import vertex_program
from musketeer.frontends.linq import Dataset, col, when
from musketeer.frontends.linq.columns import literal
from musketeer.frontends.linq.errors import located


@located
def pagerank(edges: Dataset, *, alpha: float = 0.85, tol: float = 1.0e-6, max_iter: int = 100,
             weight: str | None = None, src: str = "src", dst: str = "dst", directed: bool = True,
             vertices: Dataset | None = None, vertex_id: str = "id", validate: bool = True) -> Dataset:
    """(id, rank) for every vertex, as `networkx.pagerank` computes it.

    Same iteration and stop rule as networkx: start from 1/N; each step
    rank' = alpha * (sum of rank(u) * w(u,v) / out_weight(u) over in-edges
    + dangling mass / N) + (1 - alpha) / N, where the dangling mass is the
    rank of vertices without out-edges, spread uniformly (networkx's default
    with no personalization); stop when sum |rank' - rank| < N * tol or after
    max_iter steps (then with a warning). With `weight`, edge weights scale
    the shares; parallel edges count separately (networkx's DiGraph would
    keep one of them).
    """
    if not 0 < alpha < 1:
        raise IRError(f"pagerank: alpha must be between 0 and 1, got {alpha!r}")
    out = "out_weight" if weight is not None else "out_degree"
    # A vertex whose out-edges all weigh 0 is dangling, as in networkx (its
    # rank is spread by `dangling`); its edges carry nothing instead of 0 / 0.
    share = when(col("out_weight") > 0, col("value") * col("weight") / col("out_weight")).otherwise(0.0) \
        if weight is not None else col("value") / col("out_degree")
    n = col("num_vertices")
    result = vertex_program(
        edges, init=1.0 / n, scatter=share, gather="sum", empty=0.0,
        aggregators={"dangling": when(col(out) == 0, col("value")).otherwise(0.0).sum()},
        apply=alpha * (col("gathered") + col("dangling") / n) + (1.0 - alpha) / n,
        tolerance=tol, norm="mean", max_iter=max_iter, src=src, dst=dst, weight=weight, directed=directed,
        vertices=vertices, vertex_id=vertex_id, value_name="rank", nonnegative=True, validate=validate,
        name="ranks")
    return result


@located
def sssp(edges: Dataset, source: Any, *, weight: str | None = None, src: str = "src", dst: str = "dst",
         directed: bool = True, max_iter: int | None = None, validate: bool = True) -> Dataset:
    """(id, distance) for every vertex reachable from `source`: the sum of
    edge weights (hops when unweighted) along a shortest path.

    Bellman-Ford as a vertex program: a vertex with a known distance sends
    distance + weight along its out-edges; each vertex keeps the smallest
    offer; stop when no distance changed. Weights must be >= 0 (checked
    when the workflow runs).
    """
    source_lit = literal(source)
    ends = [edges.schema.dtype(c) for c in (src, dst) if isinstance(edges, Dataset) and c in edges.schema]
    for t in ends:
        if common_type(t, source_lit.dtype) is None:
            raise IRError(f"sssp: source {source!r} is {source_lit.dtype} but the vertex ids are {t}")
    step = col("weight") if weight is not None else 1
    result = vertex_program(
        edges, init=when(col("id") == source, 0).otherwise(None),
        active=col("value").is_not_null(), scatter=col("value") + step, gather="min",
        apply=when((col("gathered") < col("value")) | col("value").is_null(), col("gathered"))
        .otherwise(col("value")),
        fixpoint=True, max_iter=max_iter, src=src, dst=dst, weight=weight, directed=directed,
        value_name="distance", nonnegative=True, validate=validate, name="distances", must_contain=source)
    return result.where(col("distance").is_not_null())


@located
def connected_components(edges: Dataset, *, src: str = "src", dst: str = "dst", vertices: Dataset | None = None,
                         vertex_id: str = "id", max_iter: int | None = None, validate: bool = True) -> Dataset:
    """(id, component) for every vertex: the smallest vertex id in its
    (weakly) connected component, by label propagation over both edge
    directions until no label changes."""
    return vertex_program(
        edges, init=col("id"), scatter=col("value"), gather="min",
        apply=when(col("gathered") < col("value"), col("gathered")).otherwise(col("value")),
        fixpoint=True, max_iter=max_iter, src=src, dst=dst, directed=False, vertices=vertices,
        vertex_id=vertex_id, value_name="component", validate=validate, name="labels")
