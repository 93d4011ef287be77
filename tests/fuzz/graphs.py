"""Graph fuzzer: random and degenerate graphs, every algorithm, networkx as oracle.

Each case is a small edge list (written as typed parquet) drawn from a shape:
empty, a single vertex, isolated vertices only, zero weights, a vertex whose
out-edges all weigh 0, self-loops, parallel edges, many components, stars,
paths, random graphs; ids are int64 (negative ones included) or strings
(unicode, quotes). Every algorithm (pagerank, sssp, connected_components) and
two `vertex_program`s run on it and are compared with networkx on a
MultiDiGraph, which counts parallel edges separately as Musketeer does.

sssp from a vertex that is not in the graph must fail with a DataError (as
networkx raises NodeNotFound); everything else must answer.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq

import musketeer as m
from musketeer.ir import DataError

SHAPES = ("empty", "one_vertex", "isolated_only", "zero_weights", "zero_out_weight", "self_loops",
          "multi_edges", "many_components", "star", "path", "random", "random")
ALGORITHMS = ("pagerank", "sssp", "components", "in_degree", "max_propagation")
STRING_IDS = ("a", "b", "O'Brien", 'say "hi"', "é", "日本", "x y", "", "line\nbreak", "z", "ab", "B")


@dataclass
class GraphCase:
    """One fuzzed graph: edges (src, dst, weight) plus vertices without edges."""

    number: int
    shape: str
    ids: str  # "int" | "str"
    edges: list[tuple[Any, Any, float]]
    isolated: list[Any] = field(default_factory=list)

    @property
    def vertices(self) -> list[Any]:
        seen: dict[Any, None] = {}
        for u, v, _ in self.edges:
            seen[u] = seen[v] = None
        for v in self.isolated:
            seen[v] = None
        return list(seen)

    def describe(self) -> str:
        return (f"graph #{self.number} ({self.shape}, {self.ids} ids, {len(self.edges)} edges, "
                f"{len(self.isolated)} isolated)")


def random_graph(rng: random.Random, number: int) -> GraphCase:
    shape = rng.choice(SHAPES)
    ids = rng.choice(("int", "int", "str"))
    pool: list[Any] = list(STRING_IDS) if ids == "str" else \
        rng.sample(range(-50, 60), 30) + [2**62, -(2**62)]
    rng.shuffle(pool)
    n = rng.randint(1, min(len(pool), 12))
    vs = pool[:n]

    def w() -> float:
        return rng.choice((0.0, 0.5, 1.0, 2.25, round(rng.uniform(0, 10), 3)))

    def pick() -> Any:
        return rng.choice(vs)

    edges: list[tuple[Any, Any, float]] = []
    isolated: list[Any] = []
    if shape == "empty":
        pass
    elif shape == "one_vertex":
        edges = [(vs[0], vs[0], w())] * rng.randint(1, 2)
    elif shape == "isolated_only":
        isolated = vs[:rng.randint(1, 3)]
    elif shape == "zero_weights":
        edges = [(pick(), pick(), 0.0) for _ in range(rng.randint(1, 15))]
    elif shape == "zero_out_weight":
        edges = [(pick(), pick(), w()) for _ in range(rng.randint(1, 12))]
        zero = pick()
        edges = [(u, v, 0.0 if u == zero else x) for u, v, x in edges] + [(zero, pick(), 0.0)]
    elif shape == "self_loops":
        edges = [(v, v, w()) for v in vs] + [(pick(), pick(), w()) for _ in range(rng.randint(0, 6))]
    elif shape == "multi_edges":
        base = [(pick(), pick(), w()) for _ in range(rng.randint(1, 6))]
        edges = base + [rng.choice(base)[:2] + (w(),) for _ in range(rng.randint(1, 6))]
    elif shape == "many_components":
        edges = [(vs[i], vs[i + 1], w()) for i in range(0, len(vs) - 1, 2)]
    elif shape == "star":
        edges = [((vs[0], v) if rng.random() < 0.5 else (v, vs[0])) + (w(),) for v in vs[1:]]
    elif shape == "path":
        edges = [(vs[i], vs[i + 1], w()) for i in range(len(vs) - 1)]
    else:
        edges = [(pick(), pick(), w()) for _ in range(rng.randint(1, 30))]
    if shape not in ("isolated_only", "empty") and rng.random() < 0.3:
        used = {x for e in edges for x in e[:2]}
        isolated = [v for v in pool[n:n + 3] if v not in used][:rng.randint(1, 2)]
    rng.shuffle(edges)
    return GraphCase(number, shape, ids, edges, isolated)


def write_case(case: GraphCase, directory: Path) -> tuple[Path, Path | None]:
    """edges.parquet (src, dst, w) and, with isolated vertices, vertices.parquet (id)."""
    directory.mkdir(parents=True, exist_ok=True)
    id_type = pa.int64() if case.ids == "int" else pa.string()
    edges = pa.table({
        "src": pa.array([u for u, _, _ in case.edges], id_type),
        "dst": pa.array([v for _, v, _ in case.edges], id_type),
        "w": pa.array([x for _, _, x in case.edges], pa.float64()),
    })
    pq.write_table(edges, directory / "edges.parquet")
    vertices = None
    if case.isolated:
        vertices = directory / "vertices.parquet"
        pq.write_table(pa.table({"id": pa.array(case.vertices, id_type)}), vertices)
    return directory / "edges.parquet", vertices


def _multigraph(case: GraphCase, with_isolated: bool) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    if with_isolated:
        g.add_nodes_from(case.vertices)
    for u, v, x in case.edges:
        g.add_edge(u, v, w=x)
    return g


# --------------------------------------------------------------------------- one check

@dataclass
class Check:
    """What one (graph, algorithm) should give: `expected` values by vertex,
    or `error` (a DataError whose message contains it)."""

    algorithm: str
    params: dict[str, Any]
    expected: dict[Any, Any] | None = None
    error: str | None = None
    tolerance: float = 0.0
    skip: str | None = None  # why networkx gives no answer to compare with


def plan_check(case: GraphCase, algorithm: str, rng: random.Random) -> Check:
    """Choose parameters and compute networkx's answer."""
    weighted = rng.random() < 0.5
    if algorithm == "pagerank":
        g = _multigraph(case, True)
        alpha = rng.choice((0.85, 0.5, 0.99))
        params = {"weighted": weighted, "alpha": alpha}
        try:
            expected = nx.pagerank(g, alpha=alpha, weight="w" if weighted else None, tol=1e-10, max_iter=300)
        except nx.PowerIterationFailedConvergence:
            return Check(algorithm, params, skip="networkx did not converge")
        return Check(algorithm, params, expected, tolerance=1e-8)
    if algorithm == "sssp":
        g = _multigraph(case, False)
        ends = list(g)
        source = rng.choice(ends) if ends and rng.random() < 0.85 else _absent(case, rng)
        params = {"weighted": weighted, "source": source}
        if source not in g:
            return Check(algorithm, params, error=f"sssp: source vertex {source!r} is not in the graph")
        if weighted:
            expected = nx.single_source_dijkstra_path_length(g, source, weight="w")
        else:
            expected = dict(nx.single_source_shortest_path_length(g, source))
        return Check(algorithm, params, dict(expected), tolerance=1e-9)
    if algorithm == "components":
        g = _multigraph(case, True)
        expected = {v: min(c) for c in nx.weakly_connected_components(g) for v in c}
        return Check(algorithm, {}, expected)
    if algorithm == "in_degree":
        g = _multigraph(case, True)
        return Check(algorithm, {}, {v: g.in_degree(v) for v in g})
    if algorithm == "max_propagation":
        g = _multigraph(case, True)
        steps = rng.randint(1, 4)
        value = {v: v for v in g}
        for _ in range(steps):
            value = {v: max([value[v], *(value[u] for u in g.predecessors(v))]) for v in g}
        return Check(algorithm, {"steps": steps}, value)
    raise ValueError(algorithm)


def _absent(case: GraphCase, rng: random.Random) -> Any:
    taken = set(case.vertices)
    if case.ids == "int":
        return next(x for x in (rng.randint(-1000, 1000) for _ in range(100)) if x not in taken)
    return next(s for s in ("nowhere", "ghost'", "Ω", "nope") if s not in taken)


def build(check: Check, edges: Path, vertices: Path | None) -> m.Dataset:
    """The Musketeer dataset for one check."""
    e = m.read(edges)
    vs = {"vertices": m.read(vertices)} if vertices is not None else {}
    p = check.params
    if check.algorithm == "pagerank":
        return m.pagerank(e, alpha=p["alpha"], tol=1e-10, max_iter=300, weight="w" if p["weighted"] else None,
                          **vs)
    if check.algorithm == "sssp":
        return m.sssp(e, p["source"], weight="w" if p["weighted"] else None)
    if check.algorithm == "components":
        return m.connected_components(e, **vs)
    if check.algorithm == "in_degree":
        return m.vertex_program(e, init=m.lit(0), scatter=1, gather="count", empty=0, max_iter=1,
                                apply=m.col("gathered"), value_name="value", **vs)
    if check.algorithm == "max_propagation":
        return m.vertex_program(
            e, init=m.col("id"), scatter=m.col("value"), gather="max", max_iter=p["steps"], value_name="value",
            apply=m.when(m.col("gathered") > m.col("value"), m.col("gathered")).otherwise(m.col("value")), **vs)
    raise ValueError(check.algorithm)


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def compare(check: Check, got: dict[Any, Any] | None, error: BaseException | None) -> str | None:
    """None when Musketeer's answer is networkx's; else what differs."""
    if check.error is not None:
        if error is None:
            return f"expected DataError {check.error!r}, got {len(got or {})} rows"
        if not isinstance(error, DataError) or check.error not in str(error):
            return f"expected DataError {check.error!r}, got {type(error).__name__}: {error}"
        return None
    if error is not None:
        return f"{type(error).__name__}: {error}"
    assert got is not None and check.expected is not None
    if set(got) != set(check.expected):
        missing = sorted(map(repr, set(check.expected) - set(got)))[:5]
        extra = sorted(map(repr, set(got) - set(check.expected)))[:5]
        return f"vertex sets differ: missing {missing}, extra {extra}"
    for k, want in check.expected.items():
        have = got[k]
        if isinstance(want, float) or isinstance(have, float):
            if have is None or not math.isclose(have, want, rel_tol=0, abs_tol=check.tolerance):
                return f"vertex {k!r}: {have!r} instead of {want!r}"
        elif have != want:
            return f"vertex {k!r}: {have!r} instead of {want!r}"
    return None


def run_check(check: Check, edges: Path, vertices: Path | None, backend: str) -> str | None:
    """Run one check on one engine; None when it agrees with networkx."""
    got: dict[Any, Any] | None = None
    error: BaseException | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = build(check, edges, vertices).collect(backend)
        value = frame.columns[1]
        got = {_plain(k): _plain(v) for k, v in zip(frame["id"].astype(object), frame[value].astype(object))}
        if len(got) != len(frame):
            return f"{len(frame)} rows for {len(got)} vertices (a vertex appears twice)"
    except Exception as err:  # noqa: BLE001 - compared with what networkx says
        error = err
    return compare(check, got, error)


@dataclass
class Disagreement:
    case: GraphCase
    check: Check
    backend: str
    detail: str

    def __str__(self) -> str:
        return (f"{self.case.describe()}: {self.check.algorithm} {self.check.params} on {self.backend}: "
                f"{self.detail}\n  edges={self.case.edges!r} isolated={self.case.isolated!r}")


@dataclass
class GraphRun:
    checks: int = 0
    skipped: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    shapes: dict[str, int] = field(default_factory=dict)


def fuzz_graphs(seed: int, graphs: int, backends: list[str], directory: Path,
                algorithms: tuple[str, ...] = ALGORITHMS, progress: Any = None) -> GraphRun:
    """`graphs` random graphs from `seed`, every algorithm, each backend."""
    rng = random.Random(seed)
    run = GraphRun()
    for number in range(graphs):
        case = random_graph(rng, number)
        run.shapes[case.shape] = run.shapes.get(case.shape, 0) + 1
        edges, vertices = write_case(case, directory / f"g{number}")
        for algorithm in algorithms:
            if algorithm == "max_propagation" and case.ids != "int":
                continue
            check = plan_check(case, algorithm, rng)
            if check.skip:
                run.skipped += 1
                continue
            for backend in backends:
                run.checks += 1
                detail = run_check(check, edges, vertices, backend)
                if detail is not None:
                    run.disagreements.append(Disagreement(case, check, backend, detail))
        if progress is not None:
            progress(number + 1, run)
    return run
