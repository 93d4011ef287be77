"""The vertex-centric graph frontend (frontends/graph): PageRank, SSSP and
connected components on networkx-generated graphs agree with networkx, on
every available backend; loops stop when the data says so; bad edge lists
fail with one-line errors (exit code 2 from the CLI).
"""

from __future__ import annotations

import math
import random
import warnings
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import musketeer as m
from musketeer.ir import DataError, IRError, MusketeerError
from musketeer.cli import main
from tests.linq_helpers import EVERY_BACKEND, EVERY_BACKEND_HEAVY, as_dict, loop_metrics, raises_data_error

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


# --------------------------------------------------------------------------- graphs

def oriented_ba(n: int, k: int, seed: int) -> nx.DiGraph:
    """A scale-free (Barabasi-Albert) graph with each edge given a random
    direction: about n * k edges, and vertices without out-edges (dangling)."""
    rng = random.Random(seed)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for u, v in nx.barabasi_albert_graph(n, k, seed=seed).edges():
        g.add_edge(*((u, v) if rng.random() < 0.5 else (v, u)))
    return g


def weighted(g: nx.Graph, seed: int, low: float = 0.5, high: float = 10.0) -> nx.Graph:
    rng = random.Random(seed)
    for u, v in g.edges():
        g[u][v]["weight"] = round(rng.uniform(low, high), 3)
    return g


def write_edges(g: nx.Graph, path: Path, names: tuple[str, str] = ("src", "dst"), weight: str | None = None) -> Path:
    rows = [(u, v, d["weight"]) if weight else (u, v) for u, v, d in g.edges(data=True)]
    pd.DataFrame(rows, columns=[*names, weight] if weight else list(names)).to_csv(path, index=False)
    return path


def power_iteration(g: nx.DiGraph, alpha: float = 0.85, tol: float = 1e-6,
                    max_iter: int = 100) -> tuple[dict[Any, float], int]:
    """networkx's PageRank iteration in SciPy, also counting iterations."""
    nodes = list(g)
    n = len(nodes)
    a = nx.to_scipy_sparse_array(g, nodelist=nodes, weight="weight", dtype=float)
    out = np.asarray(a.sum(axis=1)).ravel()
    inv = np.divide(1.0, out, out=np.zeros(n), where=out != 0)
    q = sp.diags(inv) @ a
    dangling = out == 0
    x = np.full(n, 1.0 / n)
    for i in range(1, max_iter + 1):
        last = x
        x = alpha * (x @ q + last[dangling].sum() / n) + (1 - alpha) / n
        if np.abs(x - last).sum() < n * tol:
            return dict(zip(nodes, x)), i
    return dict(zip(nodes, x)), max_iter


def assert_close(ours: dict[Any, float], theirs: dict[Any, float], tol: float) -> None:
    assert set(ours) == set(theirs), f"vertex sets differ: {len(ours)} vs {len(theirs)}"
    worst = max(abs(ours[k] - theirs[k]) for k in theirs)
    assert worst <= tol, f"largest difference {worst}"


def components(frame: pd.DataFrame) -> list[list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for vertex, label in as_dict(frame, "id", "component").items():
        groups.setdefault(label, []).append(vertex)
    return sorted(sorted(c) for c in groups.values())


# --------------------------------------------------------------------------- PageRank

@EVERY_BACKEND_HEAVY
def test_pagerank_matches_networkx(tmp_path: Path, backend: str) -> None:
    g = oriented_ba(1500, 3, seed=11)
    assert any(g.out_degree(v) == 0 for v in g)  # dangling vertices are part of the test
    result = m.pagerank(m.read(write_edges(g, tmp_path / "e.csv"))).run(backend)
    assert_close(as_dict(result.outputs["result"], "id", "rank"), nx.pagerank(g), 1e-6)
    _, iterations = power_iteration(g)
    stats = loop_metrics(result.metrics, backend)
    assert stats == {**stats, "iterations": iterations, "converged": True}


@EVERY_BACKEND_HEAVY
def test_pagerank_weighted_undirected_selfloops_and_isolated(tmp_path: Path, backend: str) -> None:
    d = weighted(nx.DiGraph(nx.scale_free_graph(800, seed=5)), seed=5)  # keeps its self-loops
    assert nx.number_of_selfloops(d) > 0
    ranks = m.pagerank(m.read(write_edges(d, tmp_path / "w.csv", weight="w")), weight="w", alpha=0.9, tol=1e-9)
    assert_close(as_dict(ranks.collect(backend), "id", "rank"), nx.pagerank(d, alpha=0.9, tol=1e-9), 1e-9)

    u = nx.gnm_random_graph(600, 1500, seed=3)
    u.add_nodes_from(range(600, 610))  # isolated vertices, listed in a vertex file
    pd.DataFrame({"v": range(610)}).to_csv(tmp_path / "v.csv", index=False)
    undirected = m.pagerank(m.read(write_edges(u, tmp_path / "u.csv", ("a", "b"))), src="a", dst="b",
                            directed=False, vertices=m.read(tmp_path / "v.csv"), vertex_id="v")
    assert_close(as_dict(undirected.collect(backend), "id", "rank"), nx.pagerank(u), 1e-6)


def test_pagerank_example_matches_networkx(capsys: pytest.CaptureFixture[str]) -> None:
    g = nx.DiGraph()
    g.add_edges_from(pd.read_csv(EXAMPLES / "data" / "web_links.csv").itertuples(index=False))
    expected = nx.pagerank(g, tol=1e-10, max_iter=200)
    result = m.pagerank(m.read(EXAMPLES / "data" / "web_links.csv"), tol=1e-10, max_iter=200).collect()
    assert_close(as_dict(result, "id", "rank"), expected, 1e-9)
    code = main(["run", str(EXAMPLES / "pagerank.py"), "--backend", "local", "--metrics"])
    out, err = capsys.readouterr()
    assert code == 0 and "converged: True" in err
    top = out.splitlines()[2].split("|")
    best = max(expected, key=expected.get)  # type: ignore[arg-type]
    assert int(top[0]) == best and math.isclose(float(top[1]), expected[best], rel_tol=1e-9)


@EVERY_BACKEND_HEAVY
def test_pagerank_vertex_with_zero_out_weight_is_dangling(tmp_path: Path, backend: str) -> None:
    """Vertex 1's out-edges all weigh 0: networkx treats it as dangling; it
    used to divide 0 by 0 and turn every rank into NaN (issue 14)."""
    (tmp_path / "z.csv").write_text("src,dst,w\n1,2,0\n1,3,0.0\n2,3,1\n3,1,2\n4,4,0\n")
    g = nx.MultiDiGraph()
    g.add_weighted_edges_from([(1, 2, 0.0), (1, 3, 0.0), (2, 3, 1.0), (3, 1, 2.0), (4, 4, 0.0)], weight="w")
    result = m.pagerank(m.read(tmp_path / "z.csv"), weight="w").run(backend)
    ranks = as_dict(result.outputs["result"], "id", "rank")
    assert all(r is not None and not math.isnan(r) for r in ranks.values()), ranks
    assert_close(ranks, nx.pagerank(g, weight="w"), 1e-6)
    assert loop_metrics(result.metrics, backend)["converged"] is True


@EVERY_BACKEND
def test_pagerank_on_an_empty_edge_list_stops_at_once(tmp_path: Path, backend: str) -> None:
    """networkx returns {} at once; the loop used to run to max_iter and warn."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"src": pa.array([], pa.int64()), "dst": pa.array([], pa.int64())}),
                   tmp_path / "e.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "did not converge" would fail the test
        result = m.pagerank(m.read(tmp_path / "e.parquet")).run(backend)
    assert len(result.outputs["result"]) == 0 and nx.pagerank(nx.DiGraph()) == {}
    stats = loop_metrics(result.metrics, backend)
    assert stats == {**stats, "iterations": 1, "converged": True}


@EVERY_BACKEND
def test_sssp_from_a_vertex_not_in_the_graph_is_a_data_error(tmp_path: Path, backend: str,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """networkx raises NodeNotFound; an empty result would look like 'unreachable'."""
    (tmp_path / "e.csv").write_text("src,dst\n1,2\n2,3\n")
    with pytest.raises(nx.NodeNotFound):
        nx.single_source_shortest_path_length(nx.DiGraph([(1, 2), (2, 3)]), 7)
    with raises_data_error(backend, r"^sssp: source vertex 7 is not in the graph"):
        m.sssp(m.read(tmp_path / "e.csv"), 7).collect(backend)
    assert as_dict(m.sssp(m.read(tmp_path / "e.csv"), 3).collect(backend), "id", "distance") == {3: 0}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.csv").write_text("src,dst\na,b\n")
    (tmp_path / "wf.py").write_text("from musketeer import sssp, read\nworkflow = sssp(read('s.csv'), \"it's\")\n")
    assert main(["run", "wf.py", "--backend", backend]) == 2
    err = capsys.readouterr().err
    assert err == "musketeer: error: sssp: source vertex \"it's\" is not in the graph (no edge starts or ends there)\n"


# --------------------------------------------------------------------------- SSSP and components

@EVERY_BACKEND_HEAVY
def test_sssp_matches_networkx(tmp_path: Path, backend: str) -> None:
    g = weighted(nx.gnm_random_graph(1200, 4000, seed=8, directed=True), seed=8)
    result = m.sssp(m.read(write_edges(g, tmp_path / "w.csv", ("from", "to"), "km")), 0, src="from", dst="to",
                    weight="km").run(backend)
    ours = as_dict(result.outputs["result"], "id", "distance")
    theirs = nx.single_source_dijkstra_path_length(g, 0)
    assert_close(ours, theirs, 1e-9)
    assert loop_metrics(result.metrics, backend)["converged"] is True
    u = nx.barabasi_albert_graph(1500, 2, seed=4)
    hops = m.sssp(m.read(write_edges(u, tmp_path / "u.csv")), 7, directed=False).collect(backend)
    assert as_dict(hops, "id", "distance") == nx.single_source_shortest_path_length(u, 7)
    assert str(hops["distance"].dtype).startswith("int64")


@EVERY_BACKEND_HEAVY
def test_connected_components_match_networkx(tmp_path: Path, backend: str) -> None:
    g = nx.gnm_random_graph(2000, 1800, seed=21)
    g.remove_nodes_from([v for v in list(g) if g.degree(v) == 0])
    frame = m.connected_components(m.read(write_edges(g, tmp_path / "e.csv"))).collect(backend)
    assert components(frame) == sorted(sorted(c) for c in nx.connected_components(g))
    assert all(label == min(c) for c in components(frame) for label in [as_dict(frame, "id", "component")[c[0]]])


@EVERY_BACKEND
def test_convergence_iteration_count_depends_on_the_input(tmp_path: Path, backend: str) -> None:
    """Label propagation along a path of n vertices changes labels n - 1
    times and needs one more pass to see nothing changed."""
    counts = {}
    for n in (5, 12):
        path = write_edges(nx.path_graph(n), tmp_path / f"p{n}.csv")
        result = m.connected_components(m.read(path)).run(backend)
        assert set(result.outputs["result"]["component"].tolist()) == {0}
        counts[n] = loop_metrics(result.metrics, backend)["iterations"]
    assert counts == {5: 5, 12: 12}
    g = oriented_ba(400, 2, seed=3)
    loose = m.pagerank(m.read(write_edges(g, tmp_path / "g.csv")), tol=1e-3).run(backend)
    tight = m.pagerank(m.read(tmp_path / "g.csv"), tol=1e-12, max_iter=500).run(backend)
    few = loop_metrics(loose.metrics, backend)["iterations"]
    many = loop_metrics(tight.metrics, backend)["iterations"]
    assert (few, many) == (power_iteration(g, tol=1e-3)[1], power_iteration(g, tol=1e-12, max_iter=500)[1])
    assert few < many


@EVERY_BACKEND
def test_loop_hitting_max_iter_warns_and_reports(tmp_path: Path, backend: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write_edges(oriented_ba(300, 2, seed=1), tmp_path / "g.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = m.pagerank(m.read(path), tol=1e-12, max_iter=3).run(backend)
    assert len(result.outputs["result"]) == 300
    stats = loop_metrics(result.metrics, backend)
    assert stats == {**stats, "iterations": 3, "converged": False}
    assert any("did not converge after 3 iterations" in str(w.message) for w in caught)
    (tmp_path / "wf.py").write_text(f"from musketeer import pagerank, read\n"
                                    f"workflow = pagerank(read({str(path)!r}), tol=1e-12, max_iter=3)\n")
    assert main(["run", str(tmp_path / "wf.py"), "--backend", backend, "--metrics"]) == 0
    err = capsys.readouterr().err
    assert "musketeer: warning: loop" in err and "did not converge after 3 iterations" in err
    assert "converged: False" in err


@EVERY_BACKEND_HEAVY
def test_custom_vertex_programs(tmp_path: Path, backend: str) -> None:
    """One superstep each: a vertex's largest in-neighbour; its share of all
    edges (an aggregator over the vertex state)."""
    g = oriented_ba(200, 2, seed=9)
    edges = m.read(write_edges(g, tmp_path / "g.csv"))
    top = m.vertex_program(
        edges, init=m.lit(-1), scatter=m.col("src"), gather="max", empty=-1, max_iter=1, value_name="top",
        apply=m.when(m.col("gathered") > m.col("value"), m.col("gathered")).otherwise(m.col("value")))
    assert as_dict(top.collect(backend), "id", "top") == {v: max(g.predecessors(v), default=-1) for v in g}
    share = m.vertex_program(
        edges, init=0.0, scatter=1, gather="count", empty=0, max_iter=1, value_name="share",
        aggregators={"edges": m.col("out_degree").sum()}, apply=lambda v: v.gathered / v.edges)
    expected = {v: g.in_degree(v) / g.number_of_edges() for v in g}
    assert_close(as_dict(share.collect(backend), "id", "share"), expected, 1e-12)


# --------------------------------------------------------------------------- bad input

def test_bad_edge_lists_fail_at_plan_time(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("from,to,w\n1,2,1.5\n2,3,x\n")
    edges = m.read(tmp_path / "e.csv")
    cases = [
        (lambda: m.pagerank(edges), DataError,
         "the edge list has no column 'src' (its columns: from, to, w); name the column with src=..."),
        (lambda: m.sssp(edges, 1, src="from", dst="too", weight="w"), DataError,
         "the edge list has no column 'too'; did you mean 'to'?"),
        (lambda: m.sssp(edges, 1, src="from", dst="to", weight="w"), DataError,
         "weight column 'w' is string, not a number"),
        (lambda: m.sssp(edges, "a", src="from", dst="to"), IRError,
         "source 'a' is string but the vertex ids are int64"),
        (lambda: m.vertex_program(edges, src="from", dst="to", init=0, scatter=m.col("value"), gather="median",
                                  apply=m.col("value"), max_iter=1), IRError, "gather must be one of"),
        (lambda: m.vertex_program(edges, src="from", dst="to", init=0, scatter=m.col("value"), gather="sum",
                                  apply=m.col("value")), IRError, "needs a stop rule"),
        (lambda: m.pagerank(edges, src="from", dst="to", alpha=1.5), IRError, "alpha must be between 0 and 1"),
    ]
    for build, cls, message in cases:
        with pytest.raises(cls) as info:
            build()
        assert message in str(info.value), f"{message!r} not in {info.value}"
    (tmp_path / "f.csv").write_text("src,dst\n1.5,2\n")
    with pytest.raises(DataError, match="must be integers or strings, not floats"):
        m.connected_components(m.read(tmp_path / "f.csv"))


@EVERY_BACKEND
def test_bad_edge_data_fails_at_run_time(tmp_path: Path, backend: str) -> None:
    (tmp_path / "neg.csv").write_text("src,dst,w\n1,2,1.5\n2,3,-0.5\n3,4,2\n")
    with raises_data_error(backend, r"1 edge\(s\) have a negative weight, e.g. 2 -> 3 \(weight -0.5\); "
                                    r"this algorithm needs weights >= 0"):
        m.sssp(m.read(tmp_path / "neg.csv"), 1, weight="w").collect(backend)
    (tmp_path / "null.csv").write_text("src,dst\n1,2\n2,\n")
    with raises_data_error(backend, r"1 edge\(s\) have no destination vertex \(NULL dst\)"):
        m.connected_components(m.read(tmp_path / "null.csv")).collect(backend)


BAD_PY = [
    pytest.param("from musketeer import pagerank, read\nworkflow = pagerank(read('e.csv'))\n", 2,
                 "the edge list has no column 'src'", id="missing-column"),
    pytest.param("from musketeer import sssp, read\nworkflow = sssp(read('e.csv'), 1, src='a', dst='b', weight='w')\n",
                 2, "weight column 'w' is string, not a number", id="non-numeric-weight"),
    pytest.param("from musketeer import sssp, read\nworkflow = sssp(read('n.csv'), 1, src='a', dst='b', weight='w')\n",
                 None, "have a negative weight, e.g. 2 -> 3 (weight -4); this algorithm needs weights >= 0",
                 id="negative-weight"),
]


@pytest.mark.parametrize("source,line,message", BAD_PY)
def test_bad_graph_workflows_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], source: str, line: int | None,
                                    message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "e.csv").write_text("a,b,w\n1,2,1\n2,3,heavy\n")
    (tmp_path / "n.csv").write_text("a,b,w\n1,2,1\n2,3,-4\n")
    (tmp_path / "wf.py").write_text(source)
    code = main(["run", "wf.py"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert message in err.splitlines()[0], err
    if line is not None:
        assert err.startswith(f"wf.py:{line}:12: error: "), err
    else:
        assert err.startswith("musketeer: error: ") and len(err.splitlines()) == 1, err


def test_graph_results_are_datasets(tmp_path: Path) -> None:
    path = write_edges(nx.path_graph(4, create_using=nx.DiGraph), tmp_path / "p.csv")
    ranks = m.pagerank(m.read(path))
    assert isinstance(ranks, m.Dataset) and ranks.columns == ("id", "rank")
    assert "While" in ranks.explain()
    best = ranks.order_by(m.col("rank").desc()).limit(1).collect()
    assert best["id"].tolist() == [3]
    with pytest.raises(MusketeerError, match="a graph needs its edges as a Dataset"):
        m.pagerank(pd.DataFrame({"src": [1], "dst": [2]}))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- large graphs (slow)

@pytest.mark.slow
@EVERY_BACKEND
def test_large_scale_free_graph(tmp_path: Path, backend: str) -> None:
    """~10k vertices, ~50k edges: all three algorithms against networkx."""
    g = weighted(oriented_ba(10_000, 5, seed=2024), seed=2024)
    assert 49_000 <= g.number_of_edges() <= 50_000
    path = write_edges(g, tmp_path / "big.csv", weight="weight")
    edges = m.read(path)
    assert_close(as_dict(m.pagerank(edges).collect(backend), "id", "rank"), nx.pagerank(g, weight=None), 1e-6)
    assert_close(as_dict(m.pagerank(edges, weight="weight").collect(backend), "id", "rank"), nx.pagerank(g), 1e-6)
    assert_close(as_dict(m.sssp(edges, 0, weight="weight").collect(backend), "id", "distance"),
                 nx.single_source_dijkstra_path_length(g, 0), 1e-9)
    frame = m.connected_components(edges).collect(backend)
    assert components(frame) == sorted(sorted(c) for c in nx.weakly_connected_components(g))
