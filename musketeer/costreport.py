"""Text and pictures of cost estimates and plans (for explain and compare).

Kept apart from autoplan.py (which runs things) so that explain's output
can be golden-tested with a fixed profile and fixed backend names, without
any engine installed.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Sequence

from musketeer.cost_model import Cardinality, Plan, Profile, plan, single_backend_seconds
from musketeer.cost_model.planner import Supports
from musketeer.ir import Workflow
from musketeer.ir import operators as O
from musketeer.errors import UsageError

#: Fill colour per backend in plan pictures (unknown backends: grey).
COLOURS: dict[str, str] = {"local": "#a6cee3", "dask": "#fdbf6f", "spark": "#fb9a99", "ciel": "#b2df8a",
                           "local2": "#cab2d6"}


def _seconds(x: float) -> str:
    return "cannot run" if math.isinf(x) else f"{x:.3f} s"


def cost_section(workflow: Workflow, profile: Profile, backends: Sequence[str],
                 supports: Supports | None = None, card: Cardinality | None = None) -> tuple[str, Plan]:
    """The explain section: whole-workflow estimate per backend, then the
    chosen plan with per-stage estimates."""
    card = card or Cardinality(workflow)
    lines = ["", f"-- cost estimates ({profile.source}; backends: {', '.join(backends)})"]
    width = max(len(b) for b in backends)
    for b in backends:
        lines.append(f"{b:<{width}}  {_seconds(single_backend_seconds(workflow, card, profile, b, supports))}")
    p = plan(workflow, card, profile, backends, supports)
    lines.append(f"plan: {' -> '.join(s.backend for s in p.stages)}, estimated {_seconds(p.total)}")
    for n, s in enumerate(p.stages):
        reads = [op.opname for op in s.inputs]
        writes = [o.name if isinstance(o, O.Sink) else o.opname for o in s.outputs]
        lines.append(f"  stage {n}: {s.backend:<{width}}  {len(s.ops):>3} ops  {_seconds(s.estimate)}"
                     f"  reads {', '.join(reads) or 'inputs'}; writes {', '.join(writes)}")
    for sink in workflow.sinks:
        lines.append(f"  output {sink.name}: ~{card.rows(sink):,.0f} rows")
    return "\n".join(lines) + "\n", p


def plan_dot(workflow: Workflow, p: Plan | None) -> str:
    """DOT of the DAG, one cluster per stage, nodes filled by backend colour."""
    esc = lambda t: t.replace("\\", "\\\\").replace('"', '\\"')  # noqa: E731
    ids = {id(op): f"n{n}" for n, op in enumerate(workflow.ops())}
    lines = [f'digraph "{esc(workflow.name)}" {{', "  rankdir=BT;",
             '  node [shape=box, style=filled, fontname=monospace, fillcolor="#eeeeee"];']
    placed: set[int] = set()

    def node(op: O.Op, backend: str | None) -> str:
        label = op.opname
        if isinstance(op, O.Scan):
            label += f" {op.table}"
        elif isinstance(op, O.Sink):
            label += f" {op.name}"
        colour = COLOURS.get(backend or "", "#dddddd")
        return f'{ids[id(op)]} [label="{esc(label)}", fillcolor="{colour}"];'

    if p is not None:
        for n, st in enumerate(p.stages):
            lines.append(f'  subgraph cluster_{n} {{ label="stage {n}: {esc(st.backend)} '
                         f'({st.estimate:.3f} s)"; style=rounded;')
            for op in st.ops:
                if id(op) in ids and id(op) not in placed:
                    placed.add(id(op))
                    lines.append("    " + node(op, st.backend))
            lines.append("  }")
    for op in workflow.ops():
        if id(op) not in placed:
            lines.append("  " + node(op, p.assignment.get(id(op)) if p else None))
    for op in workflow.ops():
        for i in op.inputs:
            lines.append(f"  {ids[id(i)]} -> {ids[id(op)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_to_svg(dot: str) -> str:
    """Render with Graphviz's `dot`; a one-line error when it is missing."""
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError("--svg needs Graphviz's `dot` program, which is not installed "
                         "(apt install graphviz, or use --dot FILE)")
    done = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise UsageError(f"dot failed: {' '.join(done.stderr.split())[:200]}")
    return done.stdout
