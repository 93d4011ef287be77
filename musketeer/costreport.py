"""Text and pictures of cost estimates and plans (for explain and compare).

Kept apart from autoplan.py (which runs things) so that explain's output
can be golden-tested with a fixed profile and fixed backend names, without
any engine installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from musketeer.cost_model import Cardinality, Plan, Profile, plan, single_backend_seconds
from musketeer.cost_model.planner import Supports
from musketeer.ir import Workflow
from musketeer.ir import operators as O
from musketeer import plan_picture

#: Fill colour per backend in plan pictures (unknown backends: grey).
COLOURS = plan_picture.COLOURS


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
    """DOT of the plan: see plan_picture (one cluster per stage, boxes
    coloured by engine, loop bodies as clusters)."""
    return plan_picture.plan_dot(workflow, p)


def plan_svg(workflow: Workflow, p: Plan | None) -> str:
    """SVG of the plan: Graphviz where installed, else the built-in layout."""
    return plan_picture.plan_svg(workflow, p)
