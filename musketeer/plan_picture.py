"""The plan as a picture: `explain --dot/--svg` and the compare report.

A person looking at a plan wants what the text plan says, laid out as a
graph: each box shows the operator's `%id` (the same number as in
`musketeer explain`'s text), what it does (predicate, join keys, grouping
keys, table, sort keys), and how many rows the cost model expects; boxes
are filled with the colour of the engine the plan puts them on, each stage
is a cluster, and a While loop's body is a cluster of its own inside it.

`PlanGraph` is built once from the workflow, the plan and the estimates;
it is then written as DOT text (`to_dot`) or as SVG. SVG comes from
Graphviz through the `graphviz` package when Graphviz's `dot` program is
installed, and from the small layered layout in `plan_svg_fallback.py`
when it is not, so `--svg` works on every machine.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass, field

from musketeer.cost_model import Cardinality, Plan
from musketeer.ir import Workflow
from musketeer.ir import operators as O
from musketeer.ir.text import expr_text, op_args, ops_text

#: Fill colour per engine (unknown engines: grey). Colour-blind-safe pastels.
COLOURS: dict[str, str] = {"local": "#a6cee3", "dask": "#fdbf6f", "spark": "#fb9a99", "ciel": "#b2df8a",
                           "duckdb": "#ffff99", "local2": "#cab2d6"}
UNPLACED = "#eeeeee"

#: Longest detail line in a box before it is cut (the full text is the tooltip).
DETAIL_WIDTH = 44
DETAIL_LINES = 4


@dataclass
class Node:
    """One box: `ref` is the text plan's `%N`."""

    key: str
    ref: str
    kind: str
    details: list[str]
    rows: float | None
    engine: str | None
    tooltip: str

    @property
    def colour(self) -> str:
        return COLOURS.get(self.engine or "", "#dddddd") if self.engine else UNPLACED

    @property
    def lines(self) -> list[str]:
        rows = [] if self.rows is None else [f"~{format_rows(self.rows)} rows"]
        return [f"{self.ref} {self.kind}", *self.details, *rows]


@dataclass
class Cluster:
    """A group of boxes drawn inside one frame: a stage or a loop body."""

    key: str
    label: str
    nodes: list[str] = field(default_factory=list)
    children: list["Cluster"] = field(default_factory=list)
    loop: bool = False


@dataclass
class Edge:
    src: str
    dst: str
    label: str = ""


@dataclass
class PlanGraph:
    title: str
    nodes: dict[str, Node]
    edges: list[Edge]
    clusters: list[Cluster]  # top level: stages (or loop bodies when there is no plan)
    engines: list[str]  # in the order of the plan's stages, for the legend
    subtitle: str = ""


def format_rows(rows: float) -> str:
    if rows < 1:
        return "<1" if rows > 0 else "0"
    for limit, suffix in ((1e9, "G"), (1e6, "M")):
        if rows >= limit:
            return f"{rows / limit:.1f}{suffix}"
    return f"{rows:,.0f}"


def _cut(text: str, width: int = DETAIL_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap(text: str, width: int = DETAIL_WIDTH, lines: int = DETAIL_LINES) -> list[str]:
    """Break at spaces into at most `lines` lines, the last one cut."""
    out: list[str] = []
    rest = text
    while rest and len(out) < lines - 1 and len(rest) > width:
        cut = rest.rfind(" ", 0, width + 1)
        cut = cut if cut > width // 3 else width
        out.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        out.append(_cut(rest, width))
    return out


def describe(op: O.Op, ref: dict[int, str] | None = None) -> tuple[str, list[str]]:
    """(kind, detail items): what the box says about one operator; an
    operator this does not know yet shows its text-plan arguments."""
    if isinstance(op, O.Scan):
        return "Scan", [f"{op.table}: {', '.join(c.name for c in op.columns)}"]
    if isinstance(op, O.Filter):
        return "Filter", [expr_text(op.predicate)]
    if isinstance(op, O.Project):
        computed = [f"{n} := {expr_text(e)}" for n, e in op.exprs if getattr(e, "name", None) != n]
        kept = [n for n, e in op.exprs if getattr(e, "name", None) == n]
        return "Project", computed + ([f"keep {', '.join(kept)}"] if kept else [])
    if isinstance(op, O.Join):
        cond = [f"{a} = {b}" for a, b in zip(op.left_keys, op.right_keys)]
        if op.residual is not None:
            cond.append(expr_text(op.residual))
        return f"Join {op.kind}", [" AND ".join(cond) or "(no condition)"]
    if isinstance(op, O.Aggregate):
        keys = f"by {', '.join(op.keys)}" if op.keys else "no keys (one row)"
        return "Aggregate", [keys, *(f"{n} := {c}" for n, c in op.aggs)]
    if isinstance(op, O.Window):
        spec = [f"partition by {', '.join(op.partition_by)}" if op.partition_by else "one partition"]
        if op.order_by:
            spec.append(f"order by {', '.join(str(k).replace(' NULLS LAST', '') for k in op.order_by)}")
        return "Window", spec + [f"{n} := {c}" for n, c in op.calls]
    if isinstance(op, O.Sort):
        return "Sort", [", ".join(str(k).replace(" NULLS LAST", "").replace(" NULLS FIRST", " nulls first")
                                  for k in op.keys)]
    if isinstance(op, O.Limit):
        return "Limit", [f"{op.count}" + (f" offset {op.offset}" if op.offset else "")]
    if isinstance(op, (O.Union, O.Intersect, O.Except)):
        return op.opname, ["distinct" if op.distinct else "all"]
    if isinstance(op, O.Sink):
        return "Sink", [op.name + (f" -> {op.path}" if op.path else "")]
    if isinstance(op, O.LoopVar):
        return "LoopVar", [op.name]
    if isinstance(op, O.UDF):
        return "UDF", [f"{op.module}:{op.qualname} ({op.mode})"]
    if isinstance(op, O.While):
        stop = [f"max_iter {op.max_iter}"] if op.max_iter is not None else []
        stop += ["fixpoint"] if op.fixpoint else []
        stop += ["stop relation"] if op.stop is not None else []
        return "While", [f"vars {', '.join(op.names)}", f"until {' or '.join(stop) or 'stop'}"]
    return op.opname, [op_args(op, ref)] if ref is not None else []


def detail_lines(items: list[str], limit: int = DETAIL_LINES) -> list[str]:
    """The box's detail lines: each item wrapped, at most `limit` lines, and
    a count of what did not fit (the tooltip has it all)."""
    lines: list[str] = []
    for n, item in enumerate(items):
        room = limit - len(lines)
        wrapped = _wrap(item, lines=max(1, min(2, room)))
        if room <= 0 or (len(wrapped) > room):
            lines.append(f"(+{len(items) - n} more)")
            break
        if room == 1 and n < len(items) - 1:
            lines.append(f"(+{len(items) - n} more)")
            break
        lines.extend(wrapped)
    return lines


def build(workflow: Workflow, plan: Plan | None = None, card: Cardinality | None = None) -> PlanGraph:
    """The picture's content: every operator (loop bodies too) with the
    `%id` the text plan gives it, its estimated rows, and its engine."""
    if card is None:
        try:
            card = Cardinality(workflow)
        except Exception:  # noqa: BLE001 - a picture without estimates beats no picture
            card = None
    ref: dict[int, str] = {}
    ops_text(list(workflow.sinks), ref=ref, with_schema=False)
    assignment = plan.assignment if plan is not None else {}
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []

    def rows_of(op: O.Op) -> float | None:
        if card is None:
            return None
        est = card.est.get(id(op))
        if est is None:
            loops = [lp.body.get(id(op)) for lp in card.loops.values()]
            est = next((e for e in loops if e is not None), None)
        return None if est is None else est.rows

    def add(op: O.Op, engine: str | None, into: list[str], clusters: list[Cluster]) -> None:
        key = "n" + ref[id(op)][1:]
        kind, items = describe(op, ref)
        tooltip = f"{ref[id(op)]} {kind}" + (": " + "; ".join(items) if items else "")
        nodes[key] = Node(key, ref[id(op)], kind, detail_lines(items), rows_of(op), engine, tooltip)
        into.append(key)
        if isinstance(op, O.While):
            body = Cluster(f"loop_{key}", f"loop {ref[id(op)]}: body, each iteration", loop=True)
            clusters.append(body)
            roots = list(op.body) + ([op.stop] if op.stop is not None else [])
            seen = set(ref_done)
            for root in roots:
                for inner in O.walk(root, stop_at=seen):
                    if id(inner) in seen or id(inner) not in ref:
                        continue
                    seen.add(id(inner))
                    ref_done.add(id(inner))
                    add(inner, engine, body.nodes, body.children)
            for name, b in zip(op.names, op.body):
                edges.append(Edge(_key(b), key, f"next {name}"))
            if op.stop is not None:
                edges.append(Edge(_key(op.stop), key, "stop"))

    def _key(op: O.Op) -> str:
        return "n" + ref[id(op)][1:]

    ref_done: set[int] = set()
    top = [op for op in workflow.ops()]
    ref_done.update(id(op) for op in top)
    clusters: list[Cluster] = []
    loose: list[str] = []
    if plan is not None:
        for n, st in enumerate(plan.stages):
            stage = Cluster(f"stage_{n}", f"stage {n}: {st.backend}, est. {st.estimate:.3f} s")
            clusters.append(stage)
            for op in st.ops:
                if id(op) in ref and _key(op) not in nodes and any(op is t for t in top):
                    add(op, st.backend, stage.nodes, stage.children)
    for op in top:
        if _key(op) not in nodes:
            add(op, assignment.get(id(op)), loose, clusters)
    for op in list(top) + [o for k, o in _body_ops(workflow).items()]:
        inputs = op.init if isinstance(op, O.While) else op.inputs
        for i in inputs:
            if id(i) in ref and id(op) in ref:
                label = ""
                if isinstance(op, O.While):
                    label = f"init {op.names[list(op.init).index(i)]}"
                edges.append(Edge(_key(i), _key(op), label))
    engines = plan.backends if plan is not None else []
    subtitle = ""
    if plan is not None:
        subtitle = f"plan: {' -> '.join(plan.backends)}, estimated {plan.total:.3f} s"
    return PlanGraph(workflow.name, nodes, edges, clusters, engines, subtitle)


def _body_ops(workflow: Workflow) -> dict[int, O.Op]:
    """Every operator inside a loop body (nested loops too), by id."""
    found: dict[int, O.Op] = {}
    outer = {id(op) for op in workflow.ops()}

    def visit(loop: O.While, known: set[int]) -> None:
        roots = list(loop.body) + ([loop.stop] if loop.stop is not None else [])
        for root in roots:
            for op in O.walk(root, stop_at=known):
                if id(op) in known or id(op) in found:
                    continue
                found[id(op)] = op
                if isinstance(op, O.While):
                    visit(op, known | set(found))

    for op in workflow.ops():
        if isinstance(op, O.While):
            visit(op, set(outer))
    return found


# --- DOT ------------------------------------------------------------------------

def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: PlanGraph) -> str:
    """Graphviz DOT: boxes with left-aligned lines, clusters for stages and
    loop bodies, a legend of engine colours."""
    title = graph.title + (f"\n{graph.subtitle}" if graph.subtitle else "")
    lines = [f"digraph {_dot_str(graph.title)} {{",
             f"  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=12, labelloc=t, label={_dot_str(title)}, "
             "nodesep=0.25, ranksep=0.35];",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
             f'fillcolor="{UNPLACED}", margin="0.12,0.06"];',
             '  edge [color="#555555", fontname="Helvetica", fontsize=9, arrowsize=0.7];']

    def node_line(n: Node, indent: str) -> str:
        # an HTML-like label: the `%id kind` line bold, the row estimate grey
        lines = [f"<B>{_html(n.lines[0])}</B>", *(_html(d) for d in n.details)]
        if n.rows is not None:
            lines.append(f'<FONT COLOR="#333333">{_html(n.lines[-1])}</FONT>')
        label = "".join(f'{line}<BR ALIGN="LEFT"/>' for line in lines)
        return (f'{indent}{n.key} [label=<{label}>, fillcolor="{n.colour}", '
                f'tooltip={_dot_str(n.tooltip)}, id="{n.key}", class="plan-node"];')

    def cluster(c: Cluster, indent: str) -> None:
        style = 'style="rounded,dashed"; color="#333333"' if c.loop else 'style="rounded"; color="#999999"'
        lines.append(f"{indent}subgraph cluster_{c.key} {{")
        lines.append(f"{indent}  label={_dot_str(c.label)}; {style}; fontsize=10; labeljust=l;")
        for key in c.nodes:
            lines.append(node_line(graph.nodes[key], indent + "  "))
        for child in c.children:
            cluster(child, indent + "  ")
        lines.append(f"{indent}}}")

    placed: set[str] = set()

    def mark(c: Cluster) -> None:
        placed.update(c.nodes)
        for child in c.children:
            mark(child)

    for c in graph.clusters:
        cluster(c, "  ")
        mark(c)
    for key, n in graph.nodes.items():
        if key not in placed:
            lines.append(node_line(n, "  "))
    for e in graph.edges:
        attrs = f" [label={_dot_str(e.label)}]" if e.label else ""
        lines.append(f"  {e.src} -> {e.dst}{attrs};")
    if graph.engines:
        lines.append("  subgraph legend {")
        lines.append('    rank=sink; legend_title [label="engines:", shape=plaintext, style=""];')
        for name in graph.engines:
            lines.append(f'    legend_{_ident(name)} [label={_dot_str(name)}, '
                         f'fillcolor="{COLOURS.get(name, "#dddddd")}", class="legend"];')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _html(text: str) -> str:
    """Text inside a Graphviz HTML-like label."""
    return html.escape(text, quote=True)


def _ident(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


# --- SVG ------------------------------------------------------------------------

def have_graphviz() -> bool:
    """Graphviz's `dot` program and the `graphviz` package are both here."""
    if shutil.which("dot") is None:
        return False
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return True


def to_svg(graph: PlanGraph, use_graphviz: bool | None = None) -> str:
    """SVG text: Graphviz's layout where installed, else the built-in one."""
    if use_graphviz is None:
        use_graphviz = have_graphviz()
    if use_graphviz:
        import graphviz

        svg = graphviz.Source(to_dot(graph)).pipe(format="svg", encoding="utf-8")
        start = svg.find("<svg")  # drop the XML prolog and DOCTYPE so it embeds in HTML
        return svg[start:] if start >= 0 else svg
    from musketeer.plan_svg_fallback import render

    return render(graph)


def plan_dot(workflow: Workflow, plan: Plan | None = None, card: Cardinality | None = None) -> str:
    return to_dot(build(workflow, plan, card))


def plan_svg(workflow: Workflow, plan: Plan | None = None, card: Cardinality | None = None,
             use_graphviz: bool | None = None) -> str:
    return to_svg(build(workflow, plan, card), use_graphviz)
