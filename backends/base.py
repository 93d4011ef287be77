"""What every backend offers: the contract between the glue and an engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from musketeer.ir import Workflow
from musketeer.backends.capabilities import Capabilities


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


@dataclass(frozen=True)
class ClusterOption:
    """A command-line flag a backend adds to `run` (and `compare`/`calibrate`):
    `--spark-master URL` puts its value in `RunOptions.extra[key]`."""

    flag: str  # "--spark-master"
    key: str  # "spark_master"
    metavar: str
    help: str


class Backend(Protocol):
    """A backend descriptor: what the registry (backends/registry.py) lists.

    Importing a descriptor must not import its engine's library: the CLI
    lists every backend (help text, cluster flags) and `auto` prices them all
    before it loads the one it picks.
    """

    name: str
    #: Ties in `--backend auto` go to the lower number (local is 0).
    preference: int
    #: BackendProfile fields (startup, rates, ...) until `musketeer calibrate`
    #: measures this machine; `memory_fraction` = memory_bytes / physical RAM.
    default_profile: Mapping[str, Any]
    #: Flags for `run` that point the engine at a cluster.
    cluster_options: tuple[ClusterOption, ...]

    @property
    def capabilities(self) -> Capabilities:
        """What its generator implements (operators, expressions, functions,
        aggregates, join kinds); `auto` plans nothing else on it."""
        ...

    def available(self, options: RunOptions | None = None) -> tuple[bool, str]:
        """(True, "") or (False, one line saying what is missing and what to do).

        `options` carries cluster addresses (`extra["spark_master"]`,
        `extra["dask_scheduler"]`): an unreachable cluster is "not available"."""
        ...

    def generate(self, workflow: Workflow) -> Program: ...

    def run(self, program: Program, options: RunOptions) -> RunResult: ...
