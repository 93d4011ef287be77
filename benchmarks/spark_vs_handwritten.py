"""TPC-H on Spark: Musketeer's generated PySpark programs vs hand-written PySpark.

For each query (default Q1, Q3, Q6, Q17, Q18), in one process and one
SparkSession (so both pay the same warm JVM):

  (a) the program `musketeer compile --backend spark` generates, exec'd as
      the runner does and its run() called: reading the parquet files,
      executing, collecting the result to a pandas DataFrame;
  (b) the hand-written idiomatic version, benchmarks/handwritten/spark_qNN.py,
      its query() called and the result collected the same way
      (DataFrame.toArrow() -> pandas with pyarrow dtypes);
  (c) whether Spark planned both into the same physical operators, Project
      nodes aside (a noise-free check next to the timings);

over the same parquet files and the same session settings (the generated
program sets shuffle partitions from its input size; the hand-written run
gets the same value), interleaved per repetition with the order alternating
so drift on a shared machine hits both alike; the median of --repeat runs
each, after one untimed warm-up run each that also checks both results
against DuckDB (tests/tpch.py's comparison).

    .venv/bin/python benchmarks/spark_vs_handwritten.py --sf 1 --repeat 5

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
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from backends.common.loader import load_program
from musketeer.api import compile_workflow
from tests import tpch

QUERIES = (1, 3, 6, 17, 18)


def compile_query(n: int, sql: str, data_dir: Path, workdir: Path) -> tuple[types.ModuleType, float]:
    """(the generated program as a module, compile seconds) for query n."""
    path = workdir / f"q{n:02d}.sql"
    path.write_text(sql)
    start = time.perf_counter()
    program = compile_workflow(path, backend="spark", data_dir=str(data_dir))
    seconds = time.perf_counter() - start
    (workdir / f"q{n:02d}_spark.py").write_text(program.text)
    return load_program(program), seconds


def to_pandas(frame: Any) -> Any:
    """Collect a Spark DataFrame the way the generated programs do."""
    import pandas as pd

    return frame.toArrow().to_pandas(types_mapper=pd.ArrowDtype)


def runners(n: int, module: types.ModuleType, spark: Any, data_dir: Path) -> dict[str, Callable[[], Any]]:
    hand = importlib.import_module(f"benchmarks.handwritten.spark_q{n:02d}")
    partitions = str(module.shuffle_partitions(spark, module.input_paths(None)))

    def handwritten() -> Any:
        spark.conf.set("spark.sql.shuffle.partitions", partitions)  # what the generated run() sets
        return to_pandas(hand.query(spark, data_dir))

    return {"generated": lambda: module.run()["result"], "handwritten": handwritten}


def operators(frame: Any) -> list[str]:
    """The physical plan's operator names, top-down, Projects left out (names
    of columns and expression ids differ between the two versions, and where
    a cast or a computed column sits in which Project is free: projections
    run fused into the whole-stage generated code of their neighbours)."""
    plan = frame._jdf.queryExecution().executedPlan().toString()
    names = []
    for line in plan.splitlines():
        node = line.lstrip(" :+-|")
        name = node.split("(")[0].split(" ")[0] if node and node[0].isalpha() else ""
        if name and name != "Project":
            names.append(name)
    return names


def generated_operators(module: types.ModuleType) -> list[str]:
    """The operator tree of the relation the generated program collects as its result."""
    seen: list[list[str]] = []
    collect = module.collect

    def spy(frame: Any, fields: Any) -> Any:
        seen.append(operators(frame))
        return collect(frame, fields)

    module.collect = spy
    try:
        module.run()
    finally:
        module.collect = collect
    return seen[-1]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def machine(spark: Any) -> dict[str, Any]:
    import pyspark

    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr.splitlines()
    return {
        "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
        "pyspark": pyspark.__version__, "java": java[0] if java else "?", "master": spark.sparkContext.master,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                 text=True, check=False).stdout.strip(),
        "uncommitted": subprocess.run(["git", "status", "--porcelain", "backends/spark", "benchmarks/handwritten"],
                                      cwd=REPO, capture_output=True, text=True, check=False).stdout.strip().splitlines(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--queries", default=",".join(map(str, QUERIES)))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--master", default="local[*]", help="Spark master URL (default local[*])")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "spark_vs_handwritten.json")
    parser.add_argument("--keep-programs", type=Path, help="also write the generated programs to this directory")
    parser.add_argument("--no-check", action="store_true", help="skip the DuckDB check of the warm-up results")
    args = parser.parse_args(argv)
    queries = [int(q) for q in args.queries.split(",")]
    data_dir = tpch.ensure_data(args.sf, REPO / "benchmarks" / "data")
    texts = tpch.queries()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep_programs or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        compiled = {n: compile_query(n, texts[n], data_dir, workdir) for n in queries}
        first = compiled[queries[0]][0]
        spark = first.spark_session(args.master, first.input_paths(None))  # one session for everything
        for n in queries:
            module, compile_seconds = compiled[n]
            fns = runners(n, module, spark, data_dir)
            hand_plan = operators(importlib.import_module(f"benchmarks.handwritten.spark_q{n:02d}").query(spark, data_dir))
            same_plan = generated_operators(module) == hand_plan
            checks = {}
            for name, fn in fns.items():
                _, out = timed(fn)  # warm-up
                if not args.no_check:
                    try:
                        tpch.assert_query_result(out, tpch.duckdb_answer(texts[n], data_dir), texts[n])
                        checks[name] = "ok"
                    except AssertionError as exc:
                        checks[name] = f"WRONG: {str(exc).splitlines()[0]}"
            times: dict[str, list[float]] = {"generated": [], "handwritten": []}
            for rep in range(args.repeat):
                order = list(fns.items())
                for name, fn in (order if rep % 2 == 0 else order[::-1]):
                    times[name].append(timed(fn)[0])
            gen, hand = statistics.median(times["generated"]), statistics.median(times["handwritten"])
            row = {"query": n, "generated_s": gen, "handwritten_s": hand, "ratio": gen / hand,
                   "compile_s": compile_seconds, "runs": times, "check": checks, "same_operators": same_plan,
                   "load_average": os.getloadavg()}
            rows.append(row)
            print(f"q{n:02d}: generated {gen:.2f} s, hand-written {hand:.2f} s, ratio {gen / hand:.3f} "
                  f"(same operators: {same_plan}; {checks or 'unchecked'}; runs {times})", file=sys.stderr, flush=True)
        info = machine(spark)
    load_after = os.getloadavg()
    geomean = statistics.geometric_mean([r["ratio"] for r in rows])
    print(f"\nTPC-H SF {tpch.sf_label(args.sf)}, Spark {info['pyspark']} {info['master']}, median of "
          f"{args.repeat} (load average {load_before[0]:.1f} before, {load_after[0]:.1f} after)\n")
    print("| query | generated s | hand-written s | generated / hand-written | same physical operators (Projects aside) | "
          "checked vs DuckDB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        check = ", ".join(f"{k} {v}" for k, v in r["check"].items()) or "not checked"
        print(f"| Q{r['query']} | {r['generated_s']:.2f} | {r['handwritten_s']:.2f} | {r['ratio']:.3f} | "
              f"{'yes' if r['same_operators'] else 'no'} | {check} |")
    print(f"| geomean | | | {geomean:.3f} | | |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "when": dt.datetime.now().isoformat(timespec="seconds"), "sf": args.sf, "repeat": args.repeat,
        "load_average_before": load_before, "load_average_after": load_after, "machine": info,
        "geomean_ratio": geomean, "queries": rows,
    }, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
