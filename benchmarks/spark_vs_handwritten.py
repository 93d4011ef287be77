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

    .venv/bin/python benchmarks/spark_vs_handwritten.py --sf 1 --repeat 7

Data is generated once into benchmarks/data/sf<SF>/ and reused. Prints a
Markdown table and writes JSON (--out) with every repetition.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import _harness as H


def to_pandas(frame: Any) -> Any:
    """Collect a Spark DataFrame the way the generated programs do."""
    import pandas as pd

    return frame.toArrow().to_pandas(types_mapper=pd.ArrowDtype)


def runners(n: int, module: types.ModuleType, spark: Any, data_dir: Path) -> dict[str, H.Runner]:
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


def machine(spark: Any) -> dict[str, Any]:
    import subprocess

    import pyspark

    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr.splitlines()
    return H.machine({"pyspark": pyspark.__version__, "java": java[0] if java else "?",
                      "master": spark.sparkContext.master},
                     ["backends/spark", "ir", "frontends", "benchmarks/handwritten"])


def main(argv: list[str] | None = None) -> int:
    parser = H.arguments(__doc__.split("\n\n")[0], "spark_vs_handwritten.json")
    parser.add_argument("--master", default="local[*]", help="Spark master URL (default local[*])")
    parser.add_argument("--keep-programs", type=Path, help="also write the generated programs to this directory")
    args = parser.parse_args(argv)
    queries = H.query_numbers(args.queries)
    data_dir = H.tpch.ensure_data(args.sf, H.REPO / "benchmarks" / "data")
    texts = H.tpch.queries()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep_programs or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        compiled = {n: H.compile_query(n, texts[n], "spark", data_dir, workdir) for n in queries}
        first = compiled[queries[0]][0]
        spark = first.spark_session(args.master, first.input_paths(None))  # one session for everything
        for n in queries:
            module, compile_seconds, _ = compiled[n]
            fns = runners(n, module, spark, data_dir)
            hand_plan = operators(importlib.import_module(f"benchmarks.handwritten.spark_q{n:02d}").query(spark, data_dir))
            same_plan = generated_operators(module) == hand_plan
            checks = H.check_warm_up(fns, texts[n], data_dir, not args.no_check)
            times, _ = H.interleaved(fns, args.repeat)  # the JVM's CPU time is not the process's
            gen, hand = H.medians(times)["generated"], H.medians(times)["handwritten"]
            row = {"query": n, "generated_s": gen, "handwritten_s": hand, "ratio": gen / hand,
                   "compile_s": compile_seconds, "runs": times, "check": checks, "same_operators": same_plan,
                   "load_average": os.getloadavg()}
            rows.append(row)
            print(f"q{n:02d}: generated {gen:.2f} s, hand-written {hand:.2f} s, ratio {gen / hand:.3f} "
                  f"(same operators: {same_plan}; {checks or 'unchecked'}; runs {times})", file=sys.stderr, flush=True)
        info = machine(spark)
    geomean = H.geomean(r["ratio"] for r in rows)
    print(H.heading(f"Spark {info['pyspark']} {info['master']}", args.sf, args.repeat, load_before))
    print("| query | generated s | hand-written s | generated / hand-written | same physical operators (Projects aside) | "
          "checked vs DuckDB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| Q{r['query']} | {r['generated_s']:.2f} | {r['handwritten_s']:.2f} | {r['ratio']:.3f} | "
              f"{'yes' if r['same_operators'] else 'no'} | {H.check_text(r['check'])} |")
    print(f"| geomean | | | {geomean:.3f} | | |")
    H.write_results(args.out, sf=args.sf, repeat=args.repeat, load_before=load_before, info=info, rows=rows,
                    geomean_ratio=geomean)
    return 0


if __name__ == "__main__":
    sys.exit(main())
