"""The part of a Backend descriptor that is the same for every engine.

Each backend package has codegen.generate_program(workflow) -> text and
runner.run_program(program, options) -> RunResult; the descriptor imports
them on first use, so picking a backend (and asking `available()`) loads
no engine library. Capabilities are derived from the codegen module's
generator class (backends/capabilities.py) the first time they are asked for.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from musketeer.backends.base import ClusterOption, Program, RunOptions, RunResult
from musketeer.backends.capabilities import Capabilities, derive
from musketeer.ir import operators as O
from musketeer.ir.schema import Field, Schema
from musketeer.ir.types import INT64
from musketeer.ir.workflow import Workflow


def generator_class(module: ModuleType) -> type:
    """The code generator class a codegen module defines: of the classes
    defined there, the one with the most `op_<Operator>` methods."""
    def ops(cls: type) -> int:
        return sum(1 for n in dir(cls) if n.startswith("op_") and n[3:] in O.OPERATORS)

    classes = [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == module.__name__]
    best = max(classes, key=ops, default=None)
    if best is None or ops(best) == 0:
        raise RuntimeError(f"{module.__name__} defines no generator class with op_<Operator> methods")
    return best


def _probe_workflow() -> Workflow:
    scan = O.Scan("t", "t.parquet", "parquet", (O.ScanColumn("x", "x", INT64),))
    return Workflow((O.Sink(scan, "result"),), "capabilities")


def generator_capabilities(module: ModuleType) -> Capabilities:
    """Capabilities of a codegen module whose generator compiles expressions
    through `self._compiler(...)` (an `expr_compiler.BaseExprCompiler`):
    pandas/pyarrow engines call it with (frame, schema), Spark with (schema)."""
    cls = generator_class(module)
    gen = cls(_probe_workflow())
    probe_schema = Schema((Field("x", INT64),))
    try:
        compiler = gen._compiler("frame", probe_schema)

        def make(schema: Schema) -> Any:
            return gen._compiler("frame", schema)
    except TypeError:
        compiler = gen._compiler(probe_schema)

        def make(schema: Schema) -> Any:
            return gen._compiler(schema)
    return derive(cls, type(compiler), lambda schema, e: make(schema).code(e))


class GeneratedProgramBackend:
    """`generate()` and `run()` through `backends.<name>.codegen` and
    `backends.<name>.runner`; subclasses set `name`, `preference`,
    `default_profile` (and `cluster_options`) and write `available()`."""

    name: str
    preference: int = 100
    default_profile: Mapping[str, Any] = {}
    cluster_options: tuple[ClusterOption, ...] = ()

    @property
    def _package(self) -> str:
        return type(self).__module__

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        return generator_capabilities(importlib.import_module(f"{self._package}.codegen"))

    def generate(self, workflow: Workflow) -> Program:
        codegen = importlib.import_module(f"{self._package}.codegen")
        return Program(backend=self.name, text=codegen.generate_program(workflow), workflow=workflow)

    def run(self, program: Program, options: RunOptions) -> RunResult:
        runner = importlib.import_module(f"{self._package}.runner")
        return runner.run_program(program, options)
