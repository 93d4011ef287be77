"""`--backend auto`, the engine-facing glue: which engines, loaded when.

Planning, stage cutting and running a multi-stage plan are the cost
model's (cost_model/planner.py, stages.py, orchestrate.py); this module
only knows which backends exist (the registry, `candidates`), loads the
ones a plan picks (`choose_plan`: a small query local wins never imports
pyspark or probes for Java), and hands them to the cost model: `execute_auto`
(run), `compile_auto` (one program per stage plus run_plan.py, rendered
from templates/run_plan.py.j2) and `compile_single` (the plan as one
program). "auto" means this everywhere: `musketeer run`, `compile`,
`api.compile_workflow` and `Dataset.compile`.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import jinja2

from musketeer.backends.base import Backend, Program, RunOptions, RunResult
from musketeer.backends.capabilities import missing
from musketeer.backends.common.codetext import docstring_text
from musketeer.cost_model import Cardinality, Plan, Profile, plan
from musketeer.cost_model.orchestrate import (  # noqa: F401 - re-exported for callers of the old home
    AutoRun, StageRun, make_plan, per_backend_estimates, run_auto, stage_metrics, stage_row_estimates, supports,
)
from musketeer.cost_model.stages import cut_stage, rest_of, static_stages  # noqa: F401 - re-exported
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

    def check(label: str, op: O.Op) -> bool:
        # An engine not loaded yet is assumed able (deriving capabilities
        # imports its generator); the plan is checked once its engines load.
        engine = loaded.get(label)
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
                engine = api.get_backend(b, options)
                engine.capabilities  # noqa: B018 - a plugin that cannot say what it runs is dropped
                loaded[b] = engine
            except UsageError:
                names.remove(b)
            except Exception as e:  # noqa: BLE001 - one broken engine must not stop auto
                if b in registry.BUILTINS:
                    raise
                warnings.warn(f"--backend auto skips backend {b!r}: its capabilities failed "
                              f"({type(e).__name__}: {e})", RuntimeWarning, stacklevel=2)
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


TEMPLATES = Path(__file__).parent / "templates"


def driver_text(name: str, stages: list[tuple[str, str]], result_stage: int, directory: str) -> str:
    """run_plan.py (templates/run_plan.py.j2): runs the stage programs in order."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["pyrepr"] = repr
    return env.get_template("run_plan.py.j2").render(
        name=docstring_text(repr(name)), stages=stages, result=int(result_stage),
        handover=docstring_text(f"stage_N_M.parquet in {directory}"))


def compile_auto(workflow: Workflow, profile: Profile, directory: str,
                 options: RunOptions | None = None) -> dict[str, str]:
    """{file path: text}: one program per stage of the chosen plan plus a
    driver script `run_plan.py` that runs them in order."""
    directory = os.path.abspath(directory)
    p, engines, _ = choose_plan(workflow, profile, options)
    files: dict[str, str] = {}
    stages: list[tuple[str, str]] = []
    result_stage = len(p.stages) - 1
    for n, (backend, stage_wf) in enumerate(static_stages(workflow, p, directory)):
        name = f"stage_{n}_{backend}.py"
        stages.append((name, backend))
        files[os.path.join(directory, name)] = engines[backend].generate(stage_wf).text
        if any(s.name == "result" for s in stage_wf.sinks):
            result_stage = n
    files[os.path.join(directory, "run_plan.py")] = driver_text(workflow.name, stages, result_stage, directory)
    return files


def compile_single(workflow: Workflow, profile: Profile, options: RunOptions | None = None) -> Program:
    """`compile --backend auto` to one program: the cost model's plan, which
    must then be one stage (a mixed plan needs a directory: compile_auto)."""
    p, engines, _ = choose_plan(workflow, profile, options)
    if len(p.stages) != 1:
        raise UsageError(f"--backend auto plans this workflow on several engines ({' -> '.join(s.backend for s in p.stages)}): "
                         "compile it into a directory (-o DIR, one program per stage plus run_plan.py) "
                         "or name one --backend")
    return engines[p.stages[0].backend].generate(workflow)
