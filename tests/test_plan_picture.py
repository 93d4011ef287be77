"""The plan picture (`explain --dot/--svg`, the compare report): every box
carries the text plan's `%id`, what the operator does and its estimated
rows; boxes are coloured by engine; a While's body is a cluster. The oracle
is the text plan itself (`Workflow.to_text`): the picture must say the same
thing about each operator."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from musketeer import api, cli, plan_picture
from musketeer.cost_model import Cardinality, plan
from musketeer.cost_model.costs import default_profiles
from musketeer.cost_model import Profile

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SQL = EXAMPLES / "revenue_by_region.sql"
PAGERANK = EXAMPLES / "pagerank.py"
SVG = "{http://www.w3.org/2000/svg}"


def _text_plan(wf) -> dict[str, tuple[str, int]]:
    """%id -> (operator kind, indentation) from the text plan."""
    out = {}
    for line in wf.to_text(with_schema=False).splitlines():
        m = re.match(r"^( *)(%\d+) = (\w+)\(", line)
        if m:
            out[m.group(2)] = (m.group(3), len(m.group(1)))
    return out


def _plan(wf, backends=("local", "dask")):
    profiles = default_profiles()
    prof = Profile({b: profiles[b] for b in backends}, source="test")
    return plan(wf, Cardinality(wf), prof, list(backends))


def test_nodes_match_the_text_plan_with_details_and_rows() -> None:
    wf = api.plan_workflow(SQL, data_dir=str(EXAMPLES / "data"))
    graph = plan_picture.build(wf, _plan(wf))
    text = _text_plan(wf)
    assert {n.ref for n in graph.nodes.values()} == set(text)
    for node in graph.nodes.values():
        assert node.kind.split()[0] == text[node.ref][0]
        assert node.rows is not None and node.rows >= 0
        assert node.lines[0] == f"{node.ref} {node.kind}" and node.lines[-1].endswith(" rows")
    by_kind = {n.kind.split()[0]: n for n in graph.nodes.values()}
    assert "status = 'shipped'" in " ".join(by_kind["Filter"].details)
    joins = [n for n in graph.nodes.values() if n.kind.startswith("Join")]
    assert any("customer_id = customer_id" in " ".join(j.details) or "customer_id" in " ".join(j.details)
               for j in joins)
    assert any(d.startswith("by ") and "region_name" in d for d in by_kind["Aggregate"].details)
    assert "revenue DESC" in " ".join(by_kind["Sort"].details)
    assert {n.engine for n in graph.nodes.values()} <= {"local", "dask"}


def test_dot_colours_engines_and_clusters_stages() -> None:
    wf = api.plan_workflow(SQL, data_dir=str(EXAMPLES / "data"))
    p = _plan(wf)
    dot = plan_picture.plan_dot(wf, p)
    assert dot.startswith('digraph "revenue_by_region"')
    assert dot.count("subgraph cluster_stage_") == len(p.stages)
    for stage in p.stages:
        assert f'fillcolor="{plan_picture.COLOURS[stage.backend]}"' in dot
    for ref in _text_plan(wf):
        assert f"label=<<B>{ref} " in dot


def test_while_body_is_a_cluster_holding_exactly_the_loop_body() -> None:
    wf = api.plan_workflow(PAGERANK)
    graph = plan_picture.build(wf, _plan(wf, ("local",)))
    text = wf.to_text(with_schema=False).splitlines()
    loop_line = next(n for n, line in enumerate(text) if re.match(r"^\s*loop %\d+", line))
    body_refs = set()
    for line in text[loop_line + 1:]:
        m = re.match(r"^ {4}(%\d+) = ", line)
        if m:
            body_refs.add(m.group(1))
        elif not line.startswith("    "):
            break
    loops = [c for c in _clusters(graph.clusters) if c.loop]
    assert len(loops) == 1
    assert {graph.nodes[k].ref for k in loops[0].nodes} == body_refs
    dot = plan_picture.to_dot(graph)
    assert "subgraph cluster_loop_" in dot and "next ranks" in dot


def _clusters(clusters):
    for c in clusters:
        yield c
        yield from _clusters(c.children)


@pytest.mark.parametrize("use_graphviz", [False, True], ids=["built-in", "graphviz"])
def test_svg_has_a_box_per_operator_with_its_text(use_graphviz: bool) -> None:
    if use_graphviz and not plan_picture.have_graphviz():
        pytest.skip("Graphviz's dot or the graphviz package is not installed; the built-in layout is tested")
    wf = api.plan_workflow(PAGERANK)
    graph = plan_picture.build(wf, _plan(wf, ("local",)))
    svg = plan_picture.to_svg(graph, use_graphviz)
    root = ET.fromstring(svg)
    groups = [g for g in root.iter(f"{SVG}g") if "plan-node" in (g.get("class") or "")]
    assert len(groups) == len(graph.nodes)
    words = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for node in graph.nodes.values():
        assert f"{node.ref} {node.kind}" in words
    assert "loop %" in words and "rows" in words
    # the loop body's frame is drawn
    assert "body" in words


def test_explain_svg_writes_a_picture_without_graphviz(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(plan_picture, "have_graphviz", lambda: False)
    out = tmp_path / "plan.svg"
    code = cli.main(["explain", str(SQL), "--data-dir", str(EXAMPLES / "data"), "--svg", str(out)])
    assert code == 0, capsys.readouterr().err
    root = ET.fromstring(out.read_text())
    assert root.tag == f"{SVG}svg"
    assert "%0 Scan" in out.read_text()


def test_window_and_every_box_says_what_it_does(tmp_path: Path) -> None:
    sql = tmp_path / "w.sql"
    sql.write_text("SELECT customer_id, amount, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY amount DESC) "
                   "AS rn FROM orders WHERE amount > 10 ORDER BY customer_id, rn LIMIT 5\n")
    wf = api.plan_workflow(sql, data_dir=str(EXAMPLES / "data"))
    graph = plan_picture.build(wf)
    window = next(n for n in graph.nodes.values() if n.kind == "Window")
    assert window.details == ["partition by customer_id", "order by amount DESC", "rn := row_number()"]
    for node in graph.nodes.values():
        assert node.details, node  # predicate, keys, count, table, ... never just the kind
