"""`musketeer calibrate`: measure this machine, fit a cost profile.

Each backend runs small IR workflows over generated Parquet data at a few
sizes. Every benchmark ends in a global SUM so the result returned to the
driver is one row (the "base" benchmark is scan + SUM); an operator's
per-row rate is its extra time over base divided by the rows it processed,
fitted through the origin over all sizes; the startup is the intercept of
base. Wall-clock timings of generated programs, as `run` would see them.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq

from backends.base import Backend, RunOptions
from cost_model.costs import BackendProfile, Profile, load_profile, profile_path, save_profile
from ir import expr as E
from ir import operators as O
from ir.expr import AggCall
from ir.types import FLOAT64, INT64, STRING
from ir.workflow import Workflow

DEFAULT_SIZES: tuple[int, ...] = (50_000, 200_000, 1_000_000)
KINDS = ("base", "filter", "project", "join", "aggregate", "sink", "sort")


def _write_data(directory: str, n: int) -> tuple[str, str]:
    fact = os.path.join(directory, f"fact_{n}.parquet")
    dim = os.path.join(directory, f"dim_{n}.parquet")
    keys = max(1, n // 10)
    pq.write_table(pa.table({"id": pa.array(range(n), pa.int64()),
                             "k": pa.array([(i * 7919) % keys for i in range(n)], pa.int64()),
                             "v": pa.array([((i * 2654435761) % 1000) / 1000.0 for i in range(n)], pa.float64()),
                             "s": pa.array([f"s{i % 50}" for i in range(n)], pa.string())}), fact)
    pq.write_table(pa.table({"dk": pa.array(range(keys), pa.int64()),
                             "w": pa.array([float(i % 13) for i in range(keys)], pa.float64())}), dim)
    return fact, dim


def _workflow(kind: str, fact: str, dim: str) -> Workflow:
    f = O.Scan("fact", fact, "parquet", (O.ScanColumn("id", "id", INT64), O.ScanColumn("k", "k", INT64),
                                         O.ScanColumn("v", "v", FLOAT64), O.ScanColumn("s", "s", STRING)))
    total = lambda op, col: O.Aggregate(op, (), (("total", AggCall("sum", col)),))  # noqa: E731
    if kind == "base":
        root: O.Op = total(f, "v")
    elif kind == "filter":
        root = total(O.Filter(f, E.Compare("<", E.Col("v"), E.Lit.of(0.5))), "v")
    elif kind == "project":
        proj = O.Project(f, (("x", E.Arith("+", E.Arith("*", E.Col("v"), E.Lit.of(2.0)), E.Lit.of(1.0))),))
        root = total(proj, "x")
    elif kind == "join":
        d = O.Scan("dim", dim, "parquet", (O.ScanColumn("dk", "dk", INT64), O.ScanColumn("w", "w", FLOAT64)))
        root = total(O.Join(f, d, "inner", ("k",), ("dk",)), "w")
    elif kind == "aggregate":
        root = total(O.Aggregate(f, ("k",), (("sv", AggCall("sum", "v")),)), "sv")
    elif kind == "sink":
        root = f
    elif kind == "sort":
        root = O.Sort(f, (O.SortKey("v"),))
    else:  # pragma: no cover
        raise ValueError(kind)
    return Workflow((O.Sink(root, "result"),), f"calibrate_{kind}")


def _fit_rate(points: list[tuple[float, float]]) -> float:
    """Least squares through the origin: seconds = rate * work."""
    num = sum(w * t for w, t in points)
    den = sum(w * w for w, _ in points)
    return max(num / den if den else 0.0, 1e-11)


def calibrate_backend(name: str, engine: Backend, sizes: Sequence[int], directory: str,
                      options: RunOptions, base: BackendProfile,
                      tick: Callable[[str], None] = lambda _: None) -> BackendProfile:
    """Run the microbenchmarks on one engine and fit its profile."""
    times: dict[tuple[str, int], float] = {}
    for n in sizes:
        fact, dim = _write_data(directory, n)
        for kind in KINDS:
            tick(f"{name} {kind} {n:,} rows")
            program = engine.generate(_workflow(kind, fact, dim))
            best = math.inf
            for _ in range(2 if n <= 200_000 else 1):
                start = time.perf_counter()
                engine.run(program, options)
                best = min(best, time.perf_counter() - start)
            times[(kind, n)] = best
    # base: t = startup + scan * n (least squares with intercept)
    xs = [float(n) for n in sizes]
    ys = [times[("base", n)] for n in sizes]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else ys[0] / xs[0]
    slope = max(slope, 1e-11)
    startup = max(0.0, my - slope * mx)
    extra = lambda kind, n: max(0.0, times[(kind, n)] - times[("base", n)])  # noqa: E731
    rates = dict(base.rates)
    rates["scan"] = slope
    rates["filter"] = _fit_rate([(n, extra("filter", n)) for n in sizes])
    rates["project"] = _fit_rate([(n, extra("project", n)) for n in sizes])
    rates["aggregate"] = _fit_rate([(n, extra("aggregate", n)) for n in sizes])
    rates["sink"] = _fit_rate([(n, extra("sink", n)) for n in sizes])
    # join: both inputs plus output (n + n/10 + n), minus scanning the dim table
    rates["join"] = _fit_rate([(2.1 * n, max(0.0, extra("join", n) - slope * n / 10)) for n in sizes])
    rates["sort"] = _fit_rate([(n * math.log2(max(n, 2)) / 20, max(0.0, times[("sort", n)] - times[("sink", n)]))
                               for n in sizes])
    rates["limit"] = rates["project"] / 4
    return replace(base, startup=startup, rates=rates)


class Progress:
    """A plain-text progress bar on stderr (redrawn in place on a terminal)."""

    def __init__(self, total: int, stream=None, width: int = 30) -> None:
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def __call__(self, label: str) -> None:
        self.done += 1
        filled = int(self.width * self.done / max(self.total, 1))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} {label}"
        self.stream.write(("\r" + line.ljust(78)) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def calibrate(engines: Mapping[str, Backend], sizes: Sequence[int] = DEFAULT_SIZES,
              path: str | os.PathLike[str] | None = None, options: RunOptions | None = None,
              stream=None) -> tuple[Profile, str]:
    """Calibrate each engine, merge into the existing profile, write it atomically."""
    target = profile_path(path)
    current = load_profile(target) if target.exists() else Profile()
    progress = Progress(len(engines) * len(sizes) * len(KINDS), stream)
    options = options or RunOptions()
    with tempfile.TemporaryDirectory(prefix="musketeer-calibrate-") as tmp:
        for name, engine in engines.items():
            current.backends[name] = calibrate_backend(name, engine, sizes, tmp, options, current.get(name), progress)
    progress.close()
    current.source = str(target)
    save_profile(current, target)
    return current, str(target)
