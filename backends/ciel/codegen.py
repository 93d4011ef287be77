"""IR workflow -> standalone Python program that runs on the ciel engine.

The program has three layers:

* task functions (`task_t3_filter(in0)`): one per operator, the code the
  local engine runs for that operator (both subclass the pandas + pyarrow
  generator in backends/common/generator.py and inline its runtime library,
  backends/common/arrow_runtime.py), applied to one partition;
* plan functions (`job(paths)`, `plan_t7_while(state, outer)`): run *inside*
  the engine, they spawn the partitioned tasks: row-wise operators per
  partition, hash-partitioned shuffles for joins, aggregates and DISTINCT,
  a broadcast of the right side for joins without usable keys, a gather to
  one partition for sorts, limits, set operations, global aggregates and
  windows without PARTITION BY (with keys, windows shuffle on them);
* a While is a task (`task_t7_while`) that runs one iteration's plan, reads
  the stop rule and either returns the result relation or tail-spawns the
  next iteration: no driver loop.

Relations in plans are lists of Refs (one per partition). User text enters
only through repr()/comment(), as in the local engine.
"""

from __future__ import annotations

import re
from pathlib import Path

from musketeer.backends.common import arrow_runtime
from musketeer.backends.common.arrow_exprs import arrow_type
from musketeer.backends.common.codetext import comment, docstring_text, indent, output_format
from musketeer.backends.common.rendering import (
    engine_header,
    render_program,
    runtime_text,
    template_environment,
)
from musketeer.backends.common.generator import ArrowProgramGenerator
from musketeer.backends.common.walk import emit_order
from musketeer.ir import operators as O
from musketeer.ir.types import UnsupportedError
from musketeer.ir.workflow import Workflow

TEMPLATES = Path(__file__).parent / "templates"
BROADCAST_KINDS = ("inner", "left", "semi", "anti", "cross")


class CielGenerator(ArrowProgramGenerator):
    """Reuses the shared pandas + pyarrow per-operator code inside partition tasks."""

    ENGINE = "ciel engine"
    TEMPLATE_DIRS = (TEMPLATES, arrow_runtime.TEMPLATES)

    def __init__(self, workflow: Workflow) -> None:
        super().__init__(workflow)
        self.task_defs: list[list[str]] = []
        self.need("loop_checks")

    def generate(self) -> str:
        names: dict[int, str] = {}
        sinks = self.workflow.sinks
        plan = ["loop_runs: list = []  # (label, iterations, converged, has a stop rule) per loop run", "",
                *self._plan_block(list(sinks), names)]
        outputs = ", ".join(f"{s.name!r}: {names[id(s)]}" for s in sinks)
        plan += ["", f'return {{"outputs": {{{outputs}}}, "loops": loop_runs}}']
        writes = [(repr(s.name), repr(s.path), repr((s.format or output_format(s.path) or "").lower()))
                  for s in sinks if s.path is not None]
        for s in sinks:
            if s.path is not None and (s.format or output_format(s.path) or "").lower() not in ("csv", "parquet"):
                raise UnsupportedError(f"output file {s.path!r}: only .csv and .parquet files can be written")
        return self._render_ciel(plan, writes)

    # --- plans ---------------------------------------------------------------------
    def _plan_block(self, roots: list[O.Op], names: dict[int, str]) -> list[str]:
        lines: list[str] = []
        for op in emit_order(roots, names):
            lines.extend(self._plan(op, names))
        return lines

    def _plan(self, op: O.Op, names: dict[int, str]) -> list[str]:
        if isinstance(op, O.Sink):
            names[id(op)] = names[id(op.input)]
            return [f"# Sink {comment(op.name)}"]
        if isinstance(op, O.LoopVar):
            var = self._var(op, names, "loopvar")
            return [f"{var} = state[{op.name!r}]  # LoopVar {comment(op.name)}"]
        if isinstance(op, O.While):
            return self._plan_while(op, names)
        inputs = list(dict.fromkeys(op.inputs))
        params = {id(inp): f"in{k}" for k, inp in enumerate(inputs)}
        local_names = dict(params)
        body = self._emit(op, local_names)
        var = local_names[id(op)]
        fn = f"task_{var}"
        header = body[0] if body and body[0].startswith("#") else f"# {op.opname}"
        if isinstance(op, O.Values):  # constant rows: one task, one partition
            self.task_defs.append([f"def {fn}() -> pd.DataFrame:",
                                   f'    """{docstring_text(header[2:])} (one partition)."""',
                                   *indent(body, 1), f"    return {var}"])
            names[id(op)] = var
            return [header, f"{var} = [spawn(T({fn!r}))]"]
        if isinstance(op, O.Scan):
            # read only this slice (read_part): a whole table per partition task multiplied memory
            read = f"{var} = read_table("
            sliced = body and any(line.startswith(read) for line in body)
            if sliced:
                body = [line.replace(read, f"{var} = read_part(part, nparts, ", 1) if line.startswith(read)
                        else line for line in body]
            ret = f"    return {var}" if sliced else f"    return take_part({var}, part, nparts)"
            self.task_defs.append([f"def {fn}(paths: dict[str, str], part: int, nparts: int) -> pd.DataFrame:",
                                   f'    """{docstring_text(header[2:])} (one slice of the rows)."""',
                                   *indent(body, 1), ret])
            names[id(op)] = var
            return [header, f"{var} = [spawn(T({fn!r}), paths, i, NPARTS) for i in range(NPARTS)]"]
        args = ", ".join(f"{p}: pd.DataFrame" for p in params.values())
        self.task_defs.append([f"def {fn}({args}) -> pd.DataFrame:",
                               f'    """{docstring_text(header[2:])} (one partition)."""',
                               *indent(body, 1), f"    return {var}"])
        names[id(op)] = var
        rels = [names[id(i)] for i in inputs]
        return [header, f"{var} = {self._distribution(op, fn, inputs, rels)}"]

    def _distribution(self, op: O.Op, fn: str, inputs: list[O.Op], rels: list[str]) -> str:
        """How the operator's partitions line up (program text of a plan call)."""
        if isinstance(op, (O.Filter, O.Project)):
            return f"each({fn!r}, {rels[0]})"
        if isinstance(op, O.Distinct):
            return f"each({fn!r}, shuffle({rels[0]}, None))"
        if isinstance(op, O.Aggregate) and op.keys:
            return f"each({fn!r}, shuffle({rels[0]}, {list(op.keys)!r}))"
        if isinstance(op, O.Window) and op.partition_by:  # window partitions meet whole in one task
            return f"each({fn!r}, shuffle({rels[0]}, {list(op.partition_by)!r}))"
        if isinstance(op, O.Join) and len(inputs) == 2:
            same_types = all(arrow_type(op.left.schema.dtype(a)) == arrow_type(op.right.schema.dtype(b))
                             for a, b in zip(op.left_keys, op.right_keys))
            if op.left_keys and same_types and not op.null_aware:
                return (f"each({fn!r}, shuffle({rels[0]}, {list(op.left_keys)!r}), "
                        f"shuffle({rels[1]}, {list(op.right_keys)!r}))")
            if op.kind in BROADCAST_KINDS:
                return f"broadcast({fn!r}, {rels[0]}, gather({rels[1]}))"
        return f"each({fn!r}, {', '.join(f'gather({r})' for r in rels)})"

    def _plan_while(self, op: O.While, names: dict[int, str]) -> list[str]:
        var = self._var(op, names, "while")
        outer = dict(names)
        inner = dict(names)
        roots = list(op.body) + ([op.stop] if op.stop is not None else [])
        body = self._plan_block(roots, inner)
        text = "\n".join(body)
        used = sorted({v for v in outer.values() if re.search(rf"\b{v}\b", text)})
        nexts = ", ".join(f"{n!r}: {inner[id(b)]}" for n, b in zip(op.names, op.body))
        stop = inner[id(op.stop)] if op.stop is not None else "None"
        label = f"loop {var.split('_')[0][1:]} ({op.result})"  # as the local engine names it
        self.task_defs.append(
            [f"def plan_{var}(state: dict[str, list], outer: dict[str, list]) -> tuple[dict[str, list], list | None, list]:",
             '    """Spawn one iteration of the loop body: the next loop variables, the stop relation',
             '    and the runs of loops nested in the body."""',
             *[f"    {u} = outer[{u!r}]" for u in used], "    loop_runs: list = []", *indent(body, 1),
             f"    return {{{nexts}}}, {stop}, loop_runs", "",
             f"def task_{var}(i: int, state: dict[str, list], outer: dict[str, list], runs: list) -> object:",
             '    """One iteration as a task: return the loop\'s outcome, or tail-spawn the next iteration."""',
             f"    return loop_step(i, state, outer, plan_{var}, {('task_' + var)!r}, {op.max_iter!r}, "
             f"{op.fixpoint!r}, {op.result!r}, {label!r}, {op.stop is not None!r}, runs)"])
        init = ", ".join(f"{n!r}: {names[id(i)]}" for n, i in zip(op.names, op.init))
        pass_outer = ", ".join(f"{u!r}: {u}" for u in used)
        rules = ([f"max_iter {op.max_iter}"] if op.max_iter is not None else []) + \
                (["stop relation"] if op.stop is not None else []) + (["fixpoint"] if op.fixpoint else [])
        return [f"# While ({comment(', '.join(op.names))}): {', '.join(rules)}; result {comment(op.result)}",
                f"{var}_outcome = deref(spawn(T({('task_' + var)!r}), 0, {{{init}}}, {{{pass_outer}}}, []))",
                f"{var} = {var}_outcome['result']",
                f"loop_runs += {var}_outcome['runs']"]

    # --- text ----------------------------------------------------------------------
    def _render_ciel(self, plan: list[str], writes: list[tuple[str, str, str]]) -> str:
        env = template_environment(*self.TEMPLATE_DIRS)
        helpers = frozenset(self.helpers)
        return render_program(
            env, self.PROGRAM_TEMPLATE, self._bindings, helpers,
            runtime=runtime_text(env, self.RUNTIME_TEMPLATES, helpers),
            tasks="\n\n\n".join("\n".join(d) for d in self.task_defs),
            plan="\n".join(indent(plan, 1)), writes=writes, **engine_header(self.workflow.name, "ciel engine"))


def generate_program(workflow: Workflow) -> str:
    return CielGenerator(workflow).generate()
