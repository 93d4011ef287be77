"""Shared plumbing of the "generated vs hand-written" TPC-H benchmarks.

`dask_vs_handwritten.py` and `spark_vs_handwritten.py` measure the same
thing on two engines: compile a TPC-H query with Musketeer, run it next to a
hand-written version, check both against DuckDB once, then time them
interleaved and report medians. What they share lives here, so both measure
the same way: how a query is compiled and loaded, how one run is timed (wall
and process CPU), how repetitions are interleaved, how warm-up results are
checked, and which machine facts go into the JSON.

Importing this module puts the repository root on `sys.path` (the scripts
run as `python benchmarks/<name>.py`, from any directory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from musketeer.backends.common.loader import load_program
from musketeer.api import compile_workflow
from tests import tpch

QUERIES = (1, 3, 6, 17, 18)

Runner = Callable[[], Any]


def arguments(description: str, default_out: str) -> argparse.ArgumentParser:
    """The options both benchmarks take; callers add their own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--queries", default=",".join(map(str, QUERIES)))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / default_out)
    parser.add_argument("--no-check", action="store_true", help="skip the DuckDB check of the warm-up results")
    return parser


def query_numbers(text: str) -> list[int]:
    return [int(q) for q in text.split(",")]


def compile_query(n: int, sql: str, backend: str, data_dir: Path,
                  workdir: Path) -> tuple[types.ModuleType, float, str]:
    """(the generated program as a module, compile seconds, program text):
    TPC-H query n compiled by `musketeer compile --backend <backend>` and
    loaded the way the runner loads it. The text is also left in workdir."""
    path = workdir / f"q{n:02d}.sql"
    path.write_text(sql)
    start = time.perf_counter()
    program = compile_workflow(path, backend=backend, data_dir=str(data_dir))
    seconds = time.perf_counter() - start
    (workdir / f"q{n:02d}_{backend}.py").write_text(program.text)
    return load_program(program), seconds, program.text


def timed(fn: Runner) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process's threads, result). A JVM's
    CPU (Spark) is not in the second number."""
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu, out


def check_warm_up(variants: dict[str, Runner], sql: str, data_dir: Path, check: bool) -> dict[str, str]:
    """Run each variant once untimed (caches, JIT, imports warm up); unless
    `check` is off, compare each result with DuckDB's answer."""
    checks: dict[str, str] = {}
    expected = None
    for name, fn in variants.items():
        out = timed(fn)[2]
        if not check:
            continue
        if expected is None:
            expected = tpch.duckdb_answer(sql, data_dir)
        try:
            tpch.assert_query_result(out, expected, sql)
            checks[name] = "ok"
        except AssertionError as exc:
            checks[name] = f"WRONG: {str(exc).splitlines()[0]}"
    return checks


def interleaved(variants: dict[str, Runner], repeat: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time every variant `repeat` times, one after the other within each
    repetition, the order rotating by one each repetition (with two
    variants: alternating), so drift on a shared machine hits all alike.
    Returns (wall seconds, CPU seconds) per variant, in run order."""
    names = list(variants)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeat):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            w, c, _ = timed(variants[name])
            wall[name].append(w)
            cpu[name].append(c)
    return wall, cpu


def medians(runs: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in runs.items()}


def geomean(values: Iterable[float]) -> float:
    return statistics.geometric_mean(list(values))


def machine(versions: dict[str, str], dirty_paths: list[str]) -> dict[str, Any]:
    """Facts that make a result reproducible: interpreter, platform, CPUs,
    library versions, the commit, and uncommitted changes under
    `dirty_paths` (code that was measured but is not in the commit)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    return {
        "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
        **versions,
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted": git("status", "--porcelain", *dirty_paths).splitlines(),
    }


def write_results(path: Path, *, sf: float, repeat: int, load_before: tuple[float, ...], info: dict[str, Any],
                  rows: list[dict[str, Any]], **summary: Any) -> None:
    """The JSON next to the README's numbers: every repetition of every variant."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "when": dt.datetime.now().isoformat(timespec="seconds"), "sf": sf, "repeat": repeat,
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "machine": info,
        **summary, "queries": rows,
    }, indent=2, default=str))


def heading(engine: str, sf: float, repeat: int, load_before: tuple[float, ...]) -> str:
    return (f"\nTPC-H SF {tpch.sf_label(sf)}, {engine}, median of {repeat} "
            f"(load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after)\n")


def check_text(checks: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in checks.items()) or "not checked"
