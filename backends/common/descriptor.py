"""The part of a Backend descriptor that is the same for every engine.

Each backend package has codegen.generate_program(workflow) -> text and
runner.run_program(program, options) -> RunResult; the descriptor imports
them on first use, so picking a backend (and asking `available()`) loads
no engine library.
"""

from __future__ import annotations

import importlib

from musketeer.backends.base import Program, RunOptions, RunResult
from musketeer.ir.operators import OPERATORS
from musketeer.ir.workflow import Workflow


class GeneratedProgramBackend:
    """`generate()` and `run()` through `backends.<name>.codegen` and
    `backends.<name>.runner`; subclasses set `name` and write `available()`."""

    name: str
    capabilities: frozenset[str] = frozenset(OPERATORS)

    def generate(self, workflow: Workflow) -> Program:
        codegen = importlib.import_module(f"musketeer.backends.{self.name}.codegen")
        return Program(backend=self.name, text=codegen.generate_program(workflow), workflow=workflow)

    def run(self, program: Program, options: RunOptions) -> RunResult:
        runner = importlib.import_module(f"musketeer.backends.{self.name}.runner")
        return runner.run_program(program, options)
