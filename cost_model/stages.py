"""Cutting a plan into standalone stage workflows.

A plan (planner.py) assigns each operator a backend; a stage is the
operators of one backend run together. `cut_stage` turns a stage into a
workflow of its own: an edge that crosses stages becomes
`Sink(path=<dir>/stage_N_M.parquet)` in the producer and a `Scan` of that
file in the consumer. `rest_of` is what remains after some stages ran: the
same workflow over Scans of the files they wrote, whose Parquet footers
hold the real row counts (Musketeer's dynamic re-planning).
"""

from __future__ import annotations

import os

from musketeer.cost_model.planner import Plan, Stage
from musketeer.ir import Workflow
from musketeer.ir import operators as O


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
