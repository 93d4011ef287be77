"""`musketeer calibrate`: measure this machine, fit a cost profile.

Each backend runs small IR workflows over generated Parquet data at a few
sizes. Every benchmark ends in a global SUM so the result returned to the
driver is one row (the "base" benchmark is scan + SUM); an operator's
per-row rate is its extra time over base divided by the rows it processed,
fitted through the origin over all sizes. The intercept of base (time at
zero rows, in-process) is the fixed cost of its three operators, hence
`op_overhead`; a While of 1 vs 5 iterations of a PageRank-shaped step
(the loop variable joined with the large table, aggregated back per key)
at two sizes, minus what the fitted rates say its operators cost, gives
the per-iteration costs `loop_stage_overhead` (fixed, per body stage) and
`loop_row` (per loop-variable row). `startup` is measured as a user meets it: the wall time of
a whole `python -m musketeer run` process on a tiny table (interpreter,
imports, engine session or workers, one tiny query), minus that query's
in-process cost. Timings are of generated programs, as `run` sees them.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq

from musketeer.backends.base import Backend, RunOptions
from musketeer.cost_model.costs import (
    BackendProfile,
    Profile,
    load_profile,
    profile_path,
    save_profile,
)
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.expr import AggCall
from musketeer.ir.types import DATE, FLOAT64, INT64, STRING, decimal
from musketeer.ir.workflow import Workflow
from musketeer.progress import Progress

DEFAULT_SIZES: tuple[int, ...] = (50_000, 200_000, 1_000_000)
KINDS = ("base", "filter", "project", "join", "aggregate", "aggregate4", "sink", "sort")
#: Rows of the tiny table for the process-startup and loop benchmarks.
TINY_ROWS = 1_000
LOOP_ITERS = 5


def _write_data(directory: str, n: int) -> tuple[str, str]:
    fact = os.path.join(directory, f"fact_{n}.parquet")
    dim = os.path.join(directory, f"dim_{n}.parquet")
    keys = max(1, n // 10)
    import numpy as np

    i = np.arange(n, dtype=np.int64)
    cents = (i * 2654435761) % 100_000
    # Business-like columns as well (money as decimal, dates): engines differ
    # most on those, and workflows are full of them.
    pq.write_table(pa.table({"id": pa.array(i, pa.int64()),
                             "k": pa.array((i * 7919) % keys, pa.int64()),
                             "v": pa.array(((i * 2654435761) % 1000) / 1000.0, pa.float64()),
                             "s": pa.array([f"s{j % 50}" for j in range(n)], pa.string()),
                             "p": pa.array(cents / 100.0).cast(pa.decimal128(12, 2), safe=False),
                             "q": pa.array((cents % 11) / 100.0).cast(pa.decimal128(12, 2), safe=False),
                             "d": pa.array((i * 7) % 2500, pa.int32()).cast(pa.date32())}), fact)
    pq.write_table(pa.table({"dk": pa.array(range(keys), pa.int64()),
                             "w": pa.array([float(i % 13) for i in range(keys)], pa.float64())}), dim)
    return fact, dim


def _workflow(kind: str, fact: str, dim: str) -> Workflow:
    money = decimal(12, 2)
    f = O.Scan("fact", fact, "parquet", (O.ScanColumn("id", "id", INT64), O.ScanColumn("k", "k", INT64),
                                         O.ScanColumn("v", "v", FLOAT64), O.ScanColumn("s", "s", STRING),
                                         O.ScanColumn("p", "p", money), O.ScanColumn("q", "q", money),
                                         O.ScanColumn("d", "d", DATE)))
    total = lambda op, col: O.Aggregate(op, (), (("total", AggCall("sum", col)),))
    if kind == "base":
        root: O.Op = total(f, "v")
    elif kind == "filter":
        cond = E.And((E.Compare("<", E.Col("v"), E.Lit.of(0.5)),
                      E.Compare("<", E.Col("d"), E.Lit.of(dt.date(1973, 6, 1)))))
        root = total(O.Filter(f, cond), "v")
    elif kind == "project":  # float and decimal arithmetic, as in a revenue column
        proj = O.Project(f, (("x", E.Arith("+", E.Arith("*", E.Col("v"), E.Lit.of(2.0)), E.Lit.of(1.0))),
                             ("r", E.Arith("*", E.Col("p"), E.Arith("-", E.Col("p"), E.Col("q"))))))
        root = O.Aggregate(proj, (), (("total", AggCall("sum", "x")), ("r", AggCall("sum", "r"))))
    elif kind == "join":
        d = O.Scan("dim", dim, "parquet", (O.ScanColumn("dk", "dk", INT64), O.ScanColumn("w", "w", FLOAT64)))
        root = total(O.Join(f, d, "inner", ("k",), ("dk",)), "w")
    elif kind == "aggregate":
        root = total(O.Aggregate(f, ("k",), (("sv", AggCall("sum", "v")),)), "sv")
    elif kind == "aggregate4":  # the same grouping with three more aggregates: their extra cost
        root = total(O.Aggregate(f, ("k",), (("sv", AggCall("sum", "v")), ("sp", AggCall("sum", "p")),
                                             ("aq", AggCall("avg", "q")), ("n", AggCall("count_star")))), "sv")
    elif kind == "sink":
        root = f
    elif kind == "sort":
        root = O.Sort(f, (O.SortKey("v"),))
    elif kind.startswith("loop"):  # loop1 / loopN: a PageRank-shaped step, n times
        # The loop variable (one row per key, n/10) joins the large relation
        # (n rows) and is aggregated back per key: the shape of PageRank's
        # and k-means' iterations, where engines re-partition and re-schedule.
        d = O.Scan("dim", dim, "parquet", (O.ScanColumn("dk", "dk", INT64), O.ScanColumn("w", "w", FLOAT64)))
        var = O.LoopVar("x", d.schema)
        joined = O.Join(var, f, "inner", ("dk",), ("k",))
        step = O.Aggregate(joined, ("dk",), (("w", AggCall("sum", "v")),))
        root = total(O.While((d,), ("x",), (step,), "x", max_iter=int(kind[4:])), "w")
    else:  # pragma: no cover
        raise ValueError(kind)
    return Workflow((O.Sink(root, "result"),), f"calibrate_{kind}")


def _fit_rate(points: list[tuple[float, float]]) -> float:
    """Least squares through the origin: seconds = rate * work."""
    num = sum(w * t for w, t in points)
    den = sum(w * w for w, _ in points)
    return max(num / den if den else 0.0, 1e-11)


def _best_of(engine: Backend, workflow: Workflow, options: RunOptions, repeat: int) -> float:
    program = engine.generate(workflow)
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        engine.run(program, options)
        best = min(best, time.perf_counter() - start)
    return best


def process_seconds(name: str, workflow: Workflow, directory: str, repeat: int = 2) -> float:
    """Best wall time of `python -m musketeer run WORKFLOW --backend NAME` in
    a fresh process: what one `musketeer run` costs before data matters."""
    wf_path = os.path.join(directory, f"startup_{name}.json")
    with open(wf_path, "w", encoding="utf-8") as f:
        f.write(workflow.to_json())
    out = os.path.join(directory, f"startup_{name}.parquet")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "musketeer", "run", wf_path, "--backend", name,
                               "--output", out], capture_output=True, text=True, env=env, cwd=directory,
                              check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{name}: `musketeer run` of the startup benchmark failed: "
                               f"{done.stderr.strip().splitlines()[-1:] or done.returncode}")
        best = min(best, seconds)
    return best


def calibrate_backend(name: str, engine: Backend, sizes: Sequence[int], directory: str,
                      options: RunOptions, base: BackendProfile,
                      tick: Callable[[str], None] = lambda _: None) -> BackendProfile:
    """Run the microbenchmarks on one engine and fit its profile."""
    times: dict[tuple[str, int], float] = {}
    tiny_fact, tiny_dim = _write_data(directory, TINY_ROWS)
    tick(f"{name} startup (fresh process)")
    process = process_seconds(name, _workflow("base", tiny_fact, tiny_dim), directory)
    _best_of(engine, _workflow("base", tiny_fact, tiny_dim), options, 1)  # warm the session up
    tiny_base = _best_of(engine, _workflow("base", tiny_fact, tiny_dim), options, 2)
    for n in sizes:
        fact, dim = _write_data(directory, n)
        for kind in KINDS:
            tick(f"{name} {kind} {n:,} rows")
            times[(kind, n)] = _best_of(engine, _workflow(kind, fact, dim), options, 2 if n <= 200_000 else 1)
    # base: t = startup + scan * n (least squares with intercept)
    xs = [float(n) for n in sizes]
    ys = [times[("base", n)] for n in sizes]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else ys[0] / xs[0]
    slope = max(slope, 1e-11)
    fixed = max(0.0, my - slope * mx)  # scan + aggregate + sink at zero rows
    op_overhead = fixed / 3
    startup = max(0.0, process - tiny_base)
    # every other kind adds one operator to base: its fixed cost is not per row
    extra = lambda kind, n: max(0.0, times[(kind, n)] - times[("base", n)] - op_overhead)
    rates = dict(base.rates)
    rates["scan"] = slope
    rates["filter"] = _fit_rate([(n, extra("filter", n)) for n in sizes])
    rates["project"] = _fit_rate([(n, extra("project", n)) for n in sizes])
    rates["aggregate"] = _fit_rate([(n, extra("aggregate", n)) for n in sizes])
    rates["agg_expr"] = _fit_rate([(3 * n, max(0.0, times[("aggregate4", n)] - times[("aggregate", n)]))
                                   for n in sizes])
    # "sink" is scan + sink (no aggregate): one operator fewer than base
    rates["sink"] = _fit_rate([(n, max(0.0, times[("sink", n)] - times[("base", n)] + op_overhead)) for n in sizes])
    # join: both inputs plus output (n + n/10 + n), minus scanning the dim table
    rates["join"] = _fit_rate([(2.1 * n, max(0.0, extra("join", n) - op_overhead - slope * n / 10)) for n in sizes])
    rates["sort"] = _fit_rate([(n * math.log2(max(n, 2)) / 20,
                                max(0.0, times[("sort", n)] - times[("sink", n)] - op_overhead)) for n in sizes])
    rates["limit"] = rates["project"] / 4
    fitted = replace(base, startup=startup, rates=rates, op_overhead=op_overhead)
    return fit_loops(name, engine, sizes, directory, options, fitted, tick)


def loop_sizes(sizes: Sequence[int]) -> list[int]:
    """The two smallest sizes (or the one and 4x it): two sizes separate a
    loop's fixed per-iteration cost from its per-row cost."""
    ordered = sorted(set(sizes))
    return ordered[:2] if len(ordered) > 1 else [ordered[0], 4 * ordered[0]]


def fit_loops(name: str, engine: Backend, sizes: Sequence[int], directory: str, options: RunOptions,
              fitted: BackendProfile, tick: Callable[[str], None] = lambda _: None) -> BackendProfile:
    """Per-iteration costs beyond what the rates already predict.

    At two sizes, 1 and LOOP_ITERS iterations of a PageRank-shaped step: the
    difference is LOOP_ITERS-1 iterations. What the fitted per-operator
    costs do not explain of one iteration is split, by a line through the
    two sizes, into a fixed part (re-planning and re-scheduling the body:
    `loop_stage_overhead`, per stage: the step has a join and an aggregate) and a part per loop-variable row
    (`loop_row`). The local engine, which only makes Python calls per
    iteration, gets ~0 for both; a driver-side loop over a task graph does not.
    """
    from musketeer.cost_model.cardinality import Cardinality
    from musketeer.cost_model.costs import body_operators, body_stages, op_seconds

    points: list[tuple[float, float]] = []  # (loop-variable rows, unexplained seconds per iteration)
    stages = 1
    for n in loop_sizes(sizes):
        tick(f"{name} loop x1/x{LOOP_ITERS} {n:,} rows")
        fact, dim = _write_data(directory, n)
        wf1, wfn = _workflow("loop1", fact, dim), _workflow(f"loop{LOOP_ITERS}", fact, dim)
        _best_of(engine, wf1, options, 1)  # file cache and engine warm
        loop1 = _best_of(engine, wf1, options, 2)
        loop_n = _best_of(engine, wfn, options, 2)
        per_iter = max(0.0, (loop_n - loop1) / (LOOP_ITERS - 1))
        card = Cardinality(wfn)
        (loop,) = card.loops.values()
        body = body_operators(loop.ops)
        stages = body_stages(loop.ops)
        predicted = sum(op_seconds(fitted, b, card) for b in body)
        var_rows = sum(card[b].rows for b in loop.ops if isinstance(b, O.LoopVar))
        points.append((var_rows, per_iter - predicted))
    (r1, u1), (r2, u2) = points
    per_row = max(0.0, (u2 - u1) / (r2 - r1)) if r2 > r1 else 0.0
    fixed = max(0.0, u1 - per_row * r1)
    return replace(fitted, loop_overhead=0.0, loop_stage_overhead=fixed / stages, loop_row=per_row)


def recalibrate_loops(engines: Mapping[str, Backend], sizes: Sequence[int],
                      path: str | os.PathLike[str] | None = None, options: RunOptions | None = None,
                      stream=None) -> tuple[Profile, str]:
    """Only the loop costs, over the rates already in the profile (they are
    what the loop's unexplained time is measured against)."""
    target = profile_path(path)
    current = load_profile(target) if target.exists() else Profile()
    progress = Progress(len(engines) * 2, stream, title="calibrate loops")
    options = options or RunOptions()
    with tempfile.TemporaryDirectory(prefix="musketeer-calibrate-") as tmp:
        for name, engine in engines.items():
            current.backends[name] = fit_loops(name, engine, sizes, tmp, options, current.get(name), progress)
            current.source = str(target)
            save_profile(current, target)
    progress.close()
    return current, str(target)


def calibrate(engines: Mapping[str, Backend], sizes: Sequence[int] = DEFAULT_SIZES,
              path: str | os.PathLike[str] | None = None, options: RunOptions | None = None,
              stream=None) -> tuple[Profile, str]:
    """Calibrate each engine, merge into the existing profile, write it
    atomically after each engine (a later engine failing, or an interrupt,
    keeps what was measured). An engine whose benchmarks fail keeps its old
    values and is named in the raised error after the others are done."""
    target = profile_path(path)
    current = load_profile(target) if target.exists() else Profile()
    progress = Progress(len(engines) * (len(sizes) * len(KINDS) + 3), stream, title="calibrate")
    options = options or RunOptions()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="musketeer-calibrate-") as tmp:
        for name, engine in engines.items():
            try:
                current.backends[name] = calibrate_backend(name, engine, sizes, tmp, options,
                                                           current.get(name), progress)
            except Exception as e:  # noqa: BLE001 - reported below, the other engines still run
                failed.append(f"{name} ({type(e).__name__}: {' '.join(str(e).split())[:200]})")
                continue
            current.source = str(target)
            save_profile(current, target)
    progress.close()
    if failed:
        from musketeer.errors import UsageError

        raise UsageError(f"calibration failed for {'; '.join(failed)}; the other backends were written to {target}")
    return current, str(target)
