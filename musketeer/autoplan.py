"""`--backend auto`: plan across backends, cut stages, run them in order.

The cost model (cost_model/) only knows backend *names*; this module owns
the engines. It

- lists the available backends and what each supports (`engines_for`);
- turns a plan's stage into a standalone workflow: an edge that crosses
  stages becomes `Sink(path=<dir>/stage_N_M.parquet)` in the producer and a
  `Scan` of that file in the consumer (`cut_stage`);
- runs stages one at a time, re-planning after each one: the rest of the
  workflow now scans the files the stage wrote, whose Parquet footers hold
  the real row counts, so later choices use measured sizes instead of
  estimates (Musketeer's dynamic re-planning; `run_auto`).

Planner labels map to engines through a dict, so tests can run a
two-"backend" plan on one engine (labels local and local2 -> local).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from musketeer.backends.base import Backend, RunOptions, RunResult
from musketeer.backends.capabilities import missing
from musketeer.cost_model import Cardinality, Plan, Profile, plan, single_backend_seconds
from musketeer.cost_model.planner import Stage
from musketeer.ir import Workflow
from musketeer.ir import operators as O
from musketeer.errors import UsageError

#: Backend names auto considers; None: every registered backend, in the
#: registry's preference order (tests narrow it).
CANDIDATES: tuple[str, ...] | None = None


def candidates() -> list[str]:
    """The backends auto may plan on, in preference order for ties."""
    from musketeer.backends import registry

    return list(CANDIDATES) if CANDIDATES is not None else registry.names()


def available_engines(options: RunOptions | None = None,
                      names: tuple[str, ...] | list[str] | None = None) -> dict[str, Backend]:
    """Backend name -> engine, for the backends that can run here now."""
    from musketeer import api

    out: dict[str, Backend] = {}
    for name in names or candidates():
        try:
            out[name] = api.get_backend(name, options)
        except UsageError:
            continue
    return out


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


# --- cutting -----------------------------------------------------------------

def _table_name(path: str) -> str:
    """Each stage file is its own table (stage_3_0): names must not collide
    in a program that reads files of several earlier stages."""
    return os.path.splitext(os.path.basename(path))[0]


def _file_scan(op: O.Op, table: str, path: str) -> O.Scan:
    cols = tuple(O.ScanColumn(f.name, f.name, f.dtype) for f in op.schema)
    return O.Scan(table=table, path=path, format="parquet", columns=cols)


def cut_stage(stage: Stage, number: int, files: dict[int, str], directory: str,
              name: str = "workflow") -> Workflow:
    """The standalone workflow for one stage.

    `files` maps operator ids already materialised by earlier stages to
    their Parquet files; this stage's outputs read by later stages are added
    to it (as `<directory>/stage_<number>_<k>.parquet`).
    """
    swap: dict[int, O.Op] = {}
    for op in stage.inputs:
        if id(op) not in files:
            raise RuntimeError(f"stage {number} reads {op.opname}, which no earlier stage wrote")
        swap[id(op)] = _file_scan(op, _table_name(files[id(op)]), files[id(op)])
    memo: dict[int, O.Op] = {}
    sinks: list[O.Sink] = []
    k = 0
    for out in stage.outputs:
        rebuilt = O.replace_nodes(out, swap, memo)
        if isinstance(out, O.Sink):
            sinks.append(rebuilt)  # type: ignore[arg-type]
            continue
        path = os.path.join(directory, f"stage_{number}_{k}.parquet")
        k += 1
        files[id(out)] = path
        sinks.append(O.Sink(rebuilt, name=f"stage_{number}_{k - 1}", path=path, format="parquet"))
    return Workflow(tuple(sinks), f"{name}_stage{number}")


def rest_of(workflow: Workflow, done_sinks: set[str], files: dict[int, str]) -> Workflow | None:
    """The workflow still to run: sinks not yet produced, over Scans of the
    materialised files instead of the operators that wrote them."""
    todo = [s for s in workflow.sinks if s.name not in done_sinks]
    if not todo:
        return None
    swap: dict[int, O.Op] = {}
    for op in workflow.ops():
        if id(op) in files and not isinstance(op, O.Sink):
            swap[id(op)] = _file_scan(op, _table_name(files[id(op)]), files[id(op)])
    memo: dict[int, O.Op] = {}
    return Workflow(tuple(O.replace_nodes(s, swap, memo) for s in todo), workflow.name)  # type: ignore[misc]


def static_stages(workflow: Workflow, p: Plan, directory: str) -> list[tuple[str, Workflow]]:
    """Every stage of one plan, cut at once (what `compile -o DIR` writes)."""
    files: dict[int, str] = {}
    return [(s.backend, cut_stage(s, n, files, directory, workflow.name)) for n, s in enumerate(p.stages)]


# --- running -----------------------------------------------------------------

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
        for s in stage.outputs:
            if isinstance(s, O.Sink):
                outputs[s.name] = result.outputs[s.name]
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


def default_tmp_dir() -> str:
    return tempfile.gettempdir()


# --- the `--backend auto` entry points --------------------------------------

def choose_plan(workflow: Workflow, profile: Profile, options: RunOptions | None = None,
                names: tuple[str, ...] | list[str] | None = None) -> tuple[Plan, dict[str, Backend], Cardinality]:
    """Plan over every candidate backend, but load (import, check) only the
    engines a plan actually picks: a small query that local wins never pays
    for importing pyspark or probing for Java. An engine that turns out to be
    unavailable, or unable to run an operator, is dropped and we re-plan."""
    from musketeer import api
    from musketeer.backends import registry

    names = list(names or candidates())
    loaded: dict[str, Backend] = {}
    card = Cardinality(workflow)
    known = {n: registry.descriptor(n) for n in names if n in registry.entries()}

    def check(label: str, op: O.Op) -> bool:
        engine = loaded.get(label) or known.get(label)
        return engine is None or not missing(engine.capabilities, op)

    while True:
        if not names:
            raise UsageError("no backend can run this workflow here (try --backend local)")
        try:
            p = plan(workflow, card, profile, names, check)
        except ValueError as e:  # some operator no candidate engine supports
            raise UsageError(f"--backend auto: {e}") from None
        unloaded = [b for b in p.backends if b not in loaded]
        if not unloaded:
            return p, {b: loaded[b] for b in p.backends}, card
        for b in unloaded:
            try:
                loaded[b] = api.get_backend(b, options)
            except UsageError:
                names.remove(b)
        # Loaded and able to run every operator they were given: the plan
        # stands (planning again would find the same one).
        if all(b in loaded for b in p.backends) and all(
                supports(loaded)(p.assignment[id(op)], op) for op in workflow.ops() if id(op) in p.assignment):
            return p, {b: loaded[b] for b in p.backends}, card


def execute_auto(workflow: Workflow, run_options: RunOptions, profile: Profile) -> tuple[RunResult, Plan]:
    """Run with the cheapest plan: one stage runs as a plain single-backend
    program; several stages run in order with re-planning."""
    p, engines, card = choose_plan(workflow, profile, run_options)
    if len(p.stages) == 1:
        engine = engines[p.stages[0].backend]
        start = time.perf_counter()
        program = engine.generate(workflow)
        generate = time.perf_counter() - start
        start = time.perf_counter()
        result = engine.run(program, run_options)
        result.metrics["generate_seconds"] = generate
        run = StageRun(engine.name, p.total, time.perf_counter() - start, len(p.stages[0].ops),
                       est_rows=stage_row_estimates(p.stages[0], 0, card),
                       real_rows={name: len(frame) for name, frame in result.outputs.items()},
                       est_startup=profile.get(engine.name).startup)
        result.metrics = {"backend": engine.name, **stage_metrics([run], replanned=False), **result.metrics}
        return result, p
    order = candidates()
    names = [n for n in order if n in engines] + [n for n in engines if n not in order]
    engines = {**engines, **available_engines(run_options, names)}
    run = run_auto(workflow, engines, profile, run_options)
    metrics = {"backend": "auto", **run.metrics}
    return RunResult(outputs=run.outputs, metrics=metrics), p


DRIVER = '''"""Run the stages of {name!r} in order: the plan `musketeer compile --backend auto` chose.

    python run_plan.py [--output result.csv]

Each stage is a standalone program; stages hand data over in Parquet files
(stage_N_M.parquet next to this script). Arguments go to the stage that
produces the 'result' output.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STAGES = {stages!r}
RESULT_STAGE = {result!r}


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    for n, program in enumerate(STAGES):
        code = subprocess.call([sys.executable, os.path.join(HERE, program), *(args if n == RESULT_STAGE else [])])
        if code:
            print(f"stage {{n}} ({{program}}) failed with exit code {{code}}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def compile_auto(workflow: Workflow, profile: Profile, directory: str,
                 options: RunOptions | None = None) -> dict[str, str]:
    """{file path: text}: one program per stage of the chosen plan plus a
    driver script `run_plan.py` that runs them in order."""
    directory = os.path.abspath(directory)
    p, engines, _ = choose_plan(workflow, profile, options)
    files: dict[str, str] = {}
    names: list[str] = []
    result_stage = len(p.stages) - 1
    for n, (backend, stage_wf) in enumerate(static_stages(workflow, p, directory)):
        name = f"stage_{n}_{backend}.py"
        names.append(name)
        files[os.path.join(directory, name)] = engines[backend].generate(stage_wf).text
        if any(s.name == "result" for s in stage_wf.sinks):
            result_stage = n
    files[os.path.join(directory, "run_plan.py")] = DRIVER.format(name=workflow.name, stages=names,
                                                                  result=result_stage)
    return files
