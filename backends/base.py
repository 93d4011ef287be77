"""What every backend offers: the contract between the glue and an engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from musketeer.ir import Workflow


@dataclass(frozen=True)
class Program:
    """A generated, standalone program for one backend.

    `text` is a complete Python module: `python program.py --help` works on
    its own. It defines `run(tables: dict[str, str] | None = None) ->
    dict[str, pandas.DataFrame]` (sink name -> rows), which runners call.
    """

    backend: str
    text: str
    workflow: Workflow


@dataclass
class RunOptions:
    tables: dict[str, str] = field(default_factory=dict)  # table name -> path override
    # backend-specific: "spark_master" (spark://HOST:PORT), "dask_scheduler" (tcp://HOST:PORT)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    outputs: dict[str, Any]  # sink name -> pandas.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)  # seconds, iterations, ...


class Backend(Protocol):
    name: str
    capabilities: frozenset[str]  # operator class names (and features) it can run

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """(True, "") or (False, one line saying what is missing and what to do).

        `options` carries cluster addresses (`extra["spark_master"]`,
        `extra["dask_scheduler"]`): an unreachable cluster is "not available"."""
        ...

    def generate(self, workflow: Workflow) -> Program: ...

    def run(self, program: Program, options: RunOptions) -> RunResult: ...
