"""Running a plan: stage by stage on the engines, re-planning after each.

The engines are passed in (label -> an object with `generate(workflow)`
and `run(program, options)`, the backend contract of backends/base.py):
this module decides what runs where and in which order, the glue
(musketeer/autoplan.py) decides which engines exist and loads them.
Labels map to engines through a dict, so tests can run a two-"backend"
plan on one engine (labels local and local2 -> local).

- `supports(engines)`: the planner's predicate from each engine's
  capabilities (backends/capabilities.py);
- `run_auto`: run the cheapest plan's first stage, then plan the rest again
  over the files it wrote (real sizes), until every sink is produced;
- `stage_metrics`: the `--metrics` lines (estimated vs actual seconds and rows).
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from musketeer.backends.base import Backend, RunOptions, RunResult
from musketeer.backends.capabilities import missing
from musketeer.cost_model.cardinality import Cardinality
from musketeer.cost_model.costs import Profile
from musketeer.cost_model.planner import Plan, Stage, plan, single_backend_seconds
from musketeer.cost_model.stages import cut_stage, rest_of
from musketeer.ir import Workflow
from musketeer.ir import operators as O


def supports(engines: Mapping[str, Backend]):
    """A planner predicate: can engine `label` run operator `op` (and, for a
    While, every operator of its body)?"""
    def check(label: str, op: O.Op) -> bool:
        return not missing(engines[label].capabilities, op)
    return check


def make_plan(workflow: Workflow, engines: Mapping[str, Backend], profile: Profile) -> tuple[Plan, Cardinality]:
    card = Cardinality(workflow)
    return plan(workflow, card, profile, list(engines), supports(engines)), card


def per_backend_estimates(workflow: Workflow, card: Cardinality, engines: Mapping[str, Backend],
                          profile: Profile) -> dict[str, float]:
    """Seconds to run the whole workflow on each backend alone (inf: it cannot)."""
    check = supports(engines)
    return {b: single_backend_seconds(workflow, card, profile, b, check) for b in engines}


@dataclass
class StageRun:
    backend: str
    estimate: float
    seconds: float
    ops: int
    est_rows: dict[str, float] = field(default_factory=dict)
    real_rows: dict[str, int] = field(default_factory=dict)
    est_startup: float = 0.0  # part of `estimate`: the engine's start, paid once per process


@dataclass
class AutoRun:
    outputs: dict[str, Any]
    stages: list[StageRun]
    first_plan: Plan
    metrics: dict[str, Any] = field(default_factory=dict)


def run_auto(workflow: Workflow, engines: Mapping[str, Backend], profile: Profile,
             options: RunOptions, directory: str | None = None, replan: bool = True) -> AutoRun:
    """Run the cheapest plan stage by stage, re-planning after each stage."""
    own_dir = directory is None
    tmp = tempfile.TemporaryDirectory(prefix="musketeer-stages-") if own_dir else None
    directory = tmp.name if tmp is not None else directory
    assert directory is not None
    try:
        return _run_stages(workflow, engines, profile, options, directory, replan)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run_stages(workflow: Workflow, engines: Mapping[str, Backend], profile: Profile,
                options: RunOptions, directory: str, replan: bool) -> AutoRun:
    files: dict[int, str] = {}
    outputs: dict[str, Any] = {}
    runs: list[StageRun] = []
    metrics: dict[str, Any] = {}
    first: Plan | None = None
    remaining: Workflow | None = workflow
    number = 0
    static: Plan | None = None
    limit = len(workflow.ops()) + 1  # each stage consumes at least one operator
    while remaining is not None:
        if number >= limit:
            raise RuntimeError("auto plan made no progress (a stage produced nothing new)")
        if replan or static is None:
            current, card = make_plan(remaining, engines, profile)
            static = current
            stage_index = 0
        else:
            stage_index += 1
        first = first or current
        stage = static.stages[stage_index]
        stage_wf = cut_stage(stage, number, files, directory, workflow.name)
        engine = engines[stage.backend]
        start = time.perf_counter()
        program = engine.generate(stage_wf)
        metrics["generate_seconds"] = metrics.get("generate_seconds", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            result: RunResult = engine.run(program, options)
        seconds = time.perf_counter() - start
        for w in caught:
            metrics.setdefault("warnings", []).append(" ".join(str(w.message).split()))
        first_use = stage.backend not in {st.backend for st in static.stages[:stage_index]}
        run = StageRun(stage.backend, stage.estimate, seconds, len(stage.ops),
                       est_rows=stage_row_estimates(stage, number, card),
                       est_startup=profile.get(stage.backend).startup if first_use else 0.0)
        for s in stage_wf.sinks:
            frame = result.outputs.get(s.name)
            run.real_rows[s.name] = len(frame) if frame is not None else 0
        for out in stage.outputs:
            if isinstance(out, O.Sink):
                outputs[out.name] = result.outputs[out.name]
        runs.append(run)
        number += 1
        if replan:
            remaining = rest_of(remaining, set(outputs), files)
            # Keys are ids of the old workflow's operators, which may now be
            # freed and their ids reused: start afresh (the new workflow
            # reads those files through Scans).
            files = {}
        elif stage_index + 1 >= len(static.stages):
            remaining = None
    assert first is not None
    metrics.update(stage_metrics(runs, replanned=replan))
    return AutoRun(outputs, runs, first, metrics)


def stage_row_estimates(stage: Stage, number: int, card: Cardinality) -> dict[str, float]:
    """Estimated rows of each output a stage writes, under the names
    cut_stage gives them (sinks keep theirs; others are stage_N_K)."""
    out: dict[str, float] = {}
    k = 0
    for op in stage.outputs:
        if isinstance(op, O.Sink):
            out[op.name] = card[op.input].rows
        else:
            out[f"stage_{number}_{k}"] = card[op].rows
            k += 1
    return out


def stage_metrics(runs: list[StageRun], replanned: bool) -> dict[str, Any]:
    """`--metrics` lines for auto: per stage its backend, estimated vs
    actual seconds, estimated vs actual rows of each output. With
    re-planning each stage's estimate was made after the stages before it
    ran, from their real output sizes."""
    metrics: dict[str, Any] = {"plan": " -> ".join(r.backend for r in runs),
                               "replanned_after_each_stage": replanned}
    for n, r in enumerate(runs):
        rows = ", ".join(f"{name} {r.est_rows.get(name, math.nan):,.0f} -> {real:,}"
                         for name, real in r.real_rows.items())
        metrics[f"stage {n}"] = (f"{r.backend}: estimated {r.estimate:.3f} s (of which start-up "
                                 f"{r.est_startup:.3f} s, paid before the run starts), actual run "
                                 f"{r.seconds:.3f} s; rows estimated -> actual: {rows}")
    return metrics
