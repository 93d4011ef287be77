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

    .venv/bin/python benchmarks/dask_vs_handwritten.py --sf 1 --repeat 7

With --baseline DIR, a program DIR/qNN_dask.py (an earlier compiler's
output, e.g. saved from before a backend change) runs as one more variant,
"generated_baseline", interleaved with the others: a before/after A/B of
backend code in one process.

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


def handwritten_runner(module_name: str, data_dir: Path) -> H.Runner | None:
    try:
        module = importlib.import_module(f"benchmarks.handwritten.{module_name}")
    except ModuleNotFoundError:
        return None
    return lambda: module.query(str(data_dir))


def baseline_runner(n: int, baseline: Path | None) -> H.Runner | None:
    """run() of an earlier generated program saved as <baseline>/qNN_dask.py, if there is one."""
    path = baseline / f"q{n:02d}_dask.py" if baseline else None
    if path is None or not path.is_file():
        return None
    module = types.ModuleType(f"baseline_q{n:02d}")
    module.__file__ = str(path)
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)  # noqa: S102 - a program we generated
    return lambda: module.run()["result"]


def variants(n: int, module: Any, data_dir: Path, baseline: Path | None = None) -> dict[str, H.Runner]:
    found = {"generated": lambda: module.run()["result"],
             "generated_baseline": baseline_runner(n, baseline),
             "handwritten": handwritten_runner(f"dask_q{n:02d}", data_dir),
             "handwritten_same_plan": handwritten_runner(f"dask_q{n:02d}_musketeer_plan", data_dir)}
    return {name: fn for name, fn in found.items() if fn is not None}


def main(argv: list[str] | None = None) -> int:
    parser = H.arguments(__doc__.split("\n\n")[0], "dask_vs_handwritten.json")
    parser.add_argument("--baseline", type=Path, help="folder of earlier generated programs qNN_dask.py to A/B")
    args = parser.parse_args(argv)
    data_dir = H.tpch.ensure_data(args.sf, H.REPO / "benchmarks" / "data")
    texts = H.tpch.queries()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for n in H.query_numbers(args.queries):
            module, compile_seconds, _ = H.compile_query(n, texts[n], "dask", data_dir, Path(tmp))
            fns = variants(n, module, data_dir, args.baseline)
            checks = H.check_warm_up(fns, texts[n], data_dir, not args.no_check)
            wall, cpu = H.interleaved(fns, args.repeat)
            row: dict[str, Any] = {"query": n, "compile_s": compile_seconds, "wall_runs": wall, "cpu_runs": cpu,
                                   "check": checks}
            for name, value in H.medians(wall).items():
                row[f"{name}_s"] = value
            for name, value in H.medians(cpu).items():
                row[f"{name}_cpu_s"] = value
            row["ratio"] = row["generated_s"] / row["handwritten_s"]
            row["cpu_ratio"] = row["generated_cpu_s"] / row["handwritten_cpu_s"]
            if "generated_baseline_s" in row:
                row["baseline_ratio"] = row["generated_s"] / row["generated_baseline_s"]
                row["baseline_cpu_ratio"] = row["generated_cpu_s"] / row["generated_baseline_cpu_s"]
            rows.append(row)
            print(f"q{n:02d}: " + ", ".join(f"{name} {row[name + '_s']:.2f} s ({row[name + '_cpu_s']:.2f} s CPU)"
                                           for name in fns) + f"; {checks or 'unchecked'}", file=sys.stderr,
                  flush=True)
    geomean = H.geomean(r["ratio"] for r in rows)
    cpu_geomean = H.geomean(r["cpu_ratio"] for r in rows)
    print(H.heading("dask local threaded scheduler", args.sf, args.repeat, load_before))
    print("| query | generated s (CPU s) | hand-written s (CPU s) | generated / hand-written, wall (CPU) "
          "| hand-written along Musketeer's plan s (CPU s) | checked vs DuckDB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        same = (f"{r['handwritten_same_plan_s']:.2f} ({r['handwritten_same_plan_cpu_s']:.2f})"
                if "handwritten_same_plan_s" in r else "")
        print(f"| Q{r['query']} | {r['generated_s']:.2f} ({r['generated_cpu_s']:.2f}) "
              f"| {r['handwritten_s']:.2f} ({r['handwritten_cpu_s']:.2f}) | {r['ratio']:.2f} ({r['cpu_ratio']:.2f}) "
              f"| {same} | {H.check_text(r['check'])} |")
    print(f"| geomean | | | {geomean:.2f} ({cpu_geomean:.2f}) | | |")
    for r in rows:
        if "baseline_ratio" in r:
            print(f"\nQ{r['query']} baseline: {r['generated_baseline_s']:.2f} s ({r['generated_baseline_cpu_s']:.2f} s CPU);"
                  f" generated / baseline {r['baseline_ratio']:.2f} wall ({r['baseline_cpu_ratio']:.2f} CPU)")
    H.write_results(args.out, sf=args.sf, repeat=args.repeat, load_before=load_before, info=machine(),
                    rows=rows, geomean_ratio=geomean, cpu_geomean_ratio=cpu_geomean)
    return 0


def machine() -> dict[str, Any]:
    import dask
    import pandas
    import pyarrow

    return H.machine({"dask": dask.__version__, "pandas": pandas.__version__, "pyarrow": pyarrow.__version__},
                     ["backends", "ir", "frontends", "benchmarks/handwritten"])


if __name__ == "__main__":
    sys.exit(main())
