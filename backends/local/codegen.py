"""IR workflow -> standalone Python program for the local (pandas + pyarrow) engine.

The program is straight-line code in `run()`, one short block per operator
with a comment naming the IR operator, calling a small runtime library that
is inlined at the top (only the helpers this program uses). Templates in
templates/ hold the fixed text; this module emits the per-operator lines.

Relations live in variables named `t<N>_<kind>` that the generator makes up;
user text (column and table names, literals, paths) only ever enters the
program through `repr()` or `comment()`, so it cannot change the code.
"""

from __future__ import annotations

from pathlib import Path

from musketeer.backends.common.generator import ArrowProgramGenerator, limit_text
from musketeer.ir import operators as O
from musketeer.ir.workflow import Workflow

TEMPLATES = Path(__file__).parent / "templates"
RUNTIME_TEMPLATES = ("core.py.j2", "io.py.j2", "scalars.py.j2", "relational.py.j2", "loops.py.j2")

# Optional helper groups that call other groups (core and io are always included).
HELPER_DEPS: dict[str, set[str]] = {"setops": {"distinct"}}


class ProgramGenerator(ArrowProgramGenerator):
    """Generates the program text for one workflow; use `generate()` once."""

    ENGINE = "local engine"
    HELPER_DEPS = HELPER_DEPS

    TEMPLATE_DIRS = (TEMPLATES,)
    RUNTIME_TEMPLATES = RUNTIME_TEMPLATES

    # --- one method per operator (Scan, Filter, Project, Join, Aggregate, set operations, Sort, While,
    # UDF: in the base class)
    def op_Limit(self, op: O.Limit, names: dict[int, str]) -> list[str]:
        src = names[id(op.input)]
        var = self._var(op, names, "limit")
        stop = "" if op.count is None else str(op.offset + op.count)
        start = str(op.offset) if op.offset else ""
        return [f"# Limit {limit_text(op)}", f"{var} = {src}.iloc[{start}:{stop}].reset_index(drop=True)"]


def generate_program(workflow: Workflow) -> str:
    """The complete program text for `workflow`."""
    return ProgramGenerator(workflow).generate()
