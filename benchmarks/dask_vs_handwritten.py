"""TPC-H on dask: Musketeer's generated programs vs hand-written dask.dataframe code.

For each query (default Q1, Q3, Q6, Q17, Q18) and in one process:

  (a) the program `musketeer compile --backend dask` generates, exec'd as
      the runner does and its run() called (dask's local threaded scheduler);
  (b) the hand-written idiomatic version, benchmarks/handwritten/dask_qNN.py,
      its query() called;
  (c) where the hand-written version takes a shortcut Musketeer's plan does
      not (Q17, Q18), the same query written by hand along Musketeer's plan
      (dask_qNN_musketeer_plan.py), which tells plan from generated code;

all over the same parquet files, interleaved per repetition (the order
rotates each repetition) so drift on a shared machine hits all alike; the
median of --repeat runs each, wall time and CPU time (all threads of this
process: steadier than wall time when other jobs share the machine), after
one untimed warm-up run each that also checks the result against DuckDB
(tests/tpch.py's comparison).

    .venv/bin/python benchmarks/dask_vs_handwritten.py --sf 1 --repeat 5

Data is generated once into benchmarks/data/sf<SF>/ and reused. Prints a
Markdown table and writes JSON (--out) with every repetition.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from backends.common.loader import load_program  # noqa: E402
from musketeer.api import compile_workflow  # noqa: E402
from tests import tpch  # noqa: E402  (test/bench support code)

QUERIES = (1, 3, 6, 17, 18)


def generated_runner(n: int, sql: str, data_dir: Path, workdir: Path) -> tuple[Callable[[], Any], float, str]:
    """(run the generated program, compile seconds, program text) for query n."""
    path = workdir / f"q{n:02d}.sql"
    path.write_text(sql)
    start = time.perf_counter()
    program = compile_workflow(path, backend="dask", data_dir=str(data_dir))
    seconds = time.perf_counter() - start
    module = load_program(program)
    return (lambda: module.run()["result"]), seconds, program.text


def handwritten_runner(module_name: str, data_dir: Path) -> Callable[[], Any] | None:
    try:
        module = importlib.import_module(f"benchmarks.handwritten.{module_name}")
    except ModuleNotFoundError:
        return None
    return lambda: module.query(str(data_dir))


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of the whole process, result)."""
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu, out


def machine() -> dict[str, Any]:
    import dask
    import pandas
    import pyarrow

    return {
        "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
        "dask": dask.__version__, "pandas": pandas.__version__, "pyarrow": pyarrow.__version__,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                 text=True).stdout.strip(),
        "uncommitted": subprocess.run(["git", "status", "--porcelain", "backends", "benchmarks/handwritten"],
                                      cwd=REPO, capture_output=True, text=True).stdout.strip().splitlines(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--queries", default=",".join(map(str, QUERIES)))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dask_vs_handwritten.json")
    parser.add_argument("--no-check", action="store_true", help="skip the DuckDB check of the warm-up results")
    args = parser.parse_args(argv)
    queries = [int(q) for q in args.queries.split(",")]
    data_dir = tpch.ensure_data(args.sf, REPO / "benchmarks" / "data")
    texts = tpch.queries()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for n in queries:
            generated, compile_seconds, _ = generated_runner(n, texts[n], data_dir, Path(tmp))
            variants = {"generated": generated,
                        "handwritten": handwritten_runner(f"dask_q{n:02d}", data_dir),
                        "handwritten_same_plan": handwritten_runner(f"dask_q{n:02d}_musketeer_plan", data_dir)}
            variants = {name: fn for name, fn in variants.items() if fn is not None}
            checks = {}
            for name, fn in variants.items():
                out = timed(fn)[2]  # warm-up
                if not args.no_check:
                    try:
                        tpch.assert_query_result(out, tpch.duckdb_answer(texts[n], data_dir), texts[n])
                        checks[name] = "ok"
                    except AssertionError as exc:
                        checks[name] = f"WRONG: {str(exc).splitlines()[0]}"
            wall: dict[str, list[float]] = {name: [] for name in variants}
            cpu: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for rep in range(args.repeat):
                for name in names[rep % len(names):] + names[:rep % len(names)]:
                    w, c, _ = timed(variants[name])
                    wall[name].append(w)
                    cpu[name].append(c)
            row: dict[str, Any] = {"query": n, "compile_s": compile_seconds, "wall_runs": wall, "cpu_runs": cpu,
                                   "check": checks}
            for name in names:
                row[f"{name}_s"] = statistics.median(wall[name])
                row[f"{name}_cpu_s"] = statistics.median(cpu[name])
            row["ratio"] = row["generated_s"] / row["handwritten_s"]
            row["cpu_ratio"] = row["generated_cpu_s"] / row["handwritten_cpu_s"]
            rows.append(row)
            print(f"q{n:02d}: " + ", ".join(f"{name} {row[name + '_s']:.2f} s ({row[name + '_cpu_s']:.2f} s CPU)"
                                           for name in names) + f"; {checks or 'unchecked'}", file=sys.stderr,
                  flush=True)
    load_after = os.getloadavg()
    geomean = statistics.geometric_mean([r["ratio"] for r in rows])
    cpu_geomean = statistics.geometric_mean([r["cpu_ratio"] for r in rows])
    print(f"\nTPC-H SF {tpch.sf_label(args.sf)}, dask local threaded scheduler, median of {args.repeat} "
          f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after)\n")
    print("| query | generated s (CPU s) | hand-written s (CPU s) | generated / hand-written, wall (CPU) "
          "| hand-written along Musketeer's plan s (CPU s) | checked vs DuckDB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        same = (f"{r['handwritten_same_plan_s']:.2f} ({r['handwritten_same_plan_cpu_s']:.2f})"
                if "handwritten_same_plan_s" in r else "")
        check = ", ".join(f"{k} {v}" for k, v in r["check"].items()) or "not checked"
        print(f"| Q{r['query']} | {r['generated_s']:.2f} ({r['generated_cpu_s']:.2f}) "
              f"| {r['handwritten_s']:.2f} ({r['handwritten_cpu_s']:.2f}) | {r['ratio']:.2f} ({r['cpu_ratio']:.2f}) "
              f"| {same} | {check} |")
    print(f"| geomean | | | {geomean:.2f} ({cpu_geomean:.2f}) | | |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "when": dt.datetime.now().isoformat(timespec="seconds"), "sf": args.sf, "repeat": args.repeat,
        "load_average_before": load_before, "load_average_after": load_after, "machine": machine(),
        "geomean_ratio": geomean, "cpu_geomean_ratio": cpu_geomean, "queries": rows,
    }, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
