"""IR workflow -> standalone Python program for the local (pandas + pyarrow) engine.

The program is straight-line code in `run()`, one short block per operator
with a comment naming the IR operator, calling a small runtime library that
is inlined at the top (only the helpers this program uses). The runtime
library is the pandas + pyarrow one dask and ciel partitions run too
(backends/common/arrow_runtime.py); this engine adds its program skeleton
(templates/program.py.j2). Every operator's lines come from
backends/common/generator.py.

Relations live in variables named `t<N>_<kind>` that the generator makes up;
user text (column and table names, literals, paths) only ever enters the
program through `repr()` or `comment()`, so it cannot change the code.
"""

from __future__ import annotations

from pathlib import Path

from musketeer.backends.common import arrow_runtime
from musketeer.backends.common.generator import ArrowProgramGenerator
from musketeer.ir.workflow import Workflow

TEMPLATES = Path(__file__).parent / "templates"


class ProgramGenerator(ArrowProgramGenerator):
    """Generates the program text for one workflow; use `generate()` once."""

    ENGINE = "local engine"
    TEMPLATE_DIRS = (TEMPLATES, arrow_runtime.TEMPLATES)


def generate_program(workflow: Workflow) -> str:
    """The complete program text for `workflow`."""
    return ProgramGenerator(workflow).generate()
