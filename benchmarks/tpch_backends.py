"""TPC-H on every backend: Musketeer's local, dask, spark (and ciel) programs vs DuckDB.

For each of the 22 standard queries, in one process and one run:

  * compile once per backend (parse + lower + IR passes + that backend's
    codegen, through the Python API, as `musketeer compile --backend B` does;
    timed once, reported apart from the run times);
  * time the generated program's run() only -- the program text exec'd in
    this process as the in-process runners do (`musketeer run --backend B`):
    reading the parquet files, executing, materialising the result as a
    pandas DataFrame. Start-up that a warm process does not pay again is
    excluded and reported: the Spark JVM + SparkSession (started once before
    the first query, then reused by every program: `local[*]`), and the CIEL
    local cluster (started once, shared). Dask runs on its local threaded
    scheduler, as `musketeer run --backend dask` does without a scheduler;
  * time DuckDB on the same parquet files and the same query text;

interleaving the engines per repetition (the order rotates every repetition
so drift on a shared machine hits all alike), median of --repeat, and
checking every engine's first result against DuckDB's with the test suite's
comparison (tests/tpch.py: assert_query_result). A mismatch, an error or a
timeout is shown in the table, never dropped silently.

    .venv/bin/python benchmarks/tpch_backends.py --sf 1 --repeat 3

Shares data generation, compilation, timing and report helpers with
benchmarks/tpch_sf1.py (the local-vs-DuckDB benchmark with the compile-time
split). Prints a Markdown table and writes JSON (--out) with every
repetition.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.tpch_sf1 import (
    Timeout,
    compile_program,
    ensure_data,
    geomean,
    machine_info,
    one_line,
    parse_queries,
    sf_label,
    time_limit,
    write_json,
    write_query_files,
)
from tests import tpch

MUSKETEER_BACKENDS = ("local", "dask", "spark", "ciel")
ALL_ENGINES = (*MUSKETEER_BACKENDS, "duckdb")
DEFAULT_ENGINES = ("local", "dask", "spark", "duckdb")
LABELS = {"local": "local", "dask": "dask", "spark": "spark", "ciel": "ciel", "duckdb": "DuckDB"}


# --------------------------------------------------------------------------- engines

class Engines:
    """Loads generated programs into runnable callables, holding the
    process-wide resources the programs reuse (SparkSession, CIEL cluster).

    Why one object: those resources are started once, before the first
    query, so no query is billed for a JVM or worker-process start; their
    start-up times are recorded in `startup_s` instead.
    """

    def __init__(self) -> None:
        self.startup_s: dict[str, float] = {}
        self.spark: Any = None
        self.cluster: Any = None

    def load(self, backend: str, program: Any) -> Callable[[], Any]:
        """A no-argument callable running the program once and returning its result frame."""
        if backend == "ciel":
            from musketeer.backends.ciel.runner import load_program as load_ciel
            from musketeer.backends.ciel.runner import shared_cluster

            module = load_ciel(program)
            if self.cluster is None:
                t0 = time.perf_counter()
                self.cluster = shared_cluster()
                self.startup_s["ciel_cluster"] = time.perf_counter() - t0
            cluster = self.cluster
            return lambda: result_of(module.run(None, master=cluster.address, token=cluster.token))

        from musketeer.backends.common.loader import load_program

        module = load_program(program)
        if backend == "spark" and self.spark is None:
            t0 = time.perf_counter()
            self.spark = module.spark_session(None, module.input_paths(None))
            self.startup_s["spark_session"] = time.perf_counter() - t0
        # local and dask: run() with no arguments; dask then uses its local
        # threaded scheduler; spark reuses the running session (master None).
        return lambda: result_of(module.run())

    def cancel(self, backend: str) -> None:
        """Stop work left running after a timeout, so it does not load later timings."""
        if backend == "spark" and self.spark is not None:
            self.spark.sparkContext.cancelAllJobs()


def result_of(outputs: dict[str, Any]) -> Any:
    return outputs["result"] if "result" in outputs else next(iter(outputs.values()))


def duckdb_runner(con: Any, sql: str) -> Callable[[], Any]:
    return lambda: con.execute(sql).to_arrow_table()


# --------------------------------------------------------------------------- one query

def bench_query(n: int, sql: str, sql_path: Path, data_dir: Path, con: Any, engines: Engines,
                backends: list[str], repeat: int, timeout: float | None, warm_up: bool = False) -> dict:
    """Compile per backend, run every engine `repeat` times interleaved, check against DuckDB.

    `warm_up` runs each Musketeer program once untimed first (for the first
    query: Spark's first job after the session start pays seconds of JVM
    class loading and JIT that no later query pays again)."""
    rec: dict[str, Any] = {"query": n, "engines": {}}
    runners: dict[str, Callable[[], Any]] = {}
    for b in backends:
        e = rec["engines"][b] = {"runs_s": [], "error": None, "check": None}
        if b == "duckdb":
            runners[b] = duckdb_runner(con, sql)
            continue
        try:
            program, phases = compile_program(sql_path, data_dir, b)
            e["compile_s"] = phases["total"]
            e["compile_phases_s"] = phases
            runners[b] = engines.load(b, program)
        except Exception as exc:  # noqa: BLE001 - a failing query is a result, not a crash
            e["error"] = "compile: " + one_line(exc)
            e["traceback"] = traceback.format_exc()

    if warm_up:  # once, before the first timed run of the whole benchmark
        for b in [b for b in backends if b in runners and b != "duckdb"]:
            t0 = time.perf_counter()
            try:
                with time_limit(timeout):
                    runners[b]()
            except Exception:  # noqa: BLE001 - the timed runs below record the error
                if b == "spark":
                    engines.cancel(b)
            engines.startup_s[f"{b}_warm_up_q{n:02d}"] = time.perf_counter() - t0

    first: dict[str, Any] = {}
    for rep in range(repeat):
        order = backends[rep % len(backends):] + backends[:rep % len(backends)]
        for b in order:
            if b not in runners:
                continue
            e = rec["engines"][b]
            gc.collect()
            try:
                with time_limit(timeout):
                    t0 = time.perf_counter()
                    out = runners[b]()
                    e["runs_s"].append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001
                if isinstance(exc, Timeout):
                    engines.cancel(b)
                e["error"] = ("timeout: " if isinstance(exc, Timeout) else "run: ") + one_line(exc)
                e["traceback"] = traceback.format_exc()
                del runners[b]  # don't retry a failing / timed-out query
                first.pop(b, None)
                continue
            first.setdefault(b, out)
            del out

    reference = first.get("duckdb")
    if reference is None and "duckdb" not in backends:  # DuckDB not timed: the reference only
        reference = con.execute(sql).to_arrow_table()
    rec["rows"] = reference.num_rows if reference is not None else None
    for b, e in rec["engines"].items():
        e["median_s"] = statistics.median(e["runs_s"]) if e["runs_s"] and e["error"] is None else None
        if b == "duckdb" or e["error"] or b not in first:
            continue
        if reference is None:
            e["check"] = "no reference"
            continue
        try:
            tpch.assert_query_result(first[b], reference, sql)
            e["check"] = "ok"
        except AssertionError as exc:
            e["check"] = "MISMATCH"
            e["check_detail"] = str(exc)[:4000]
    duck = rec["engines"].get("duckdb", {}).get("median_s")
    for b, e in rec["engines"].items():
        e["ratio_to_duckdb"] = e["median_s"] / duck if e["median_s"] and duck and b != "duckdb" else None
    rec["loadavg_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    return rec


def status(e: dict) -> str:
    """'ok', 'MISMATCH', 'timeout', 'error' (details in the notes under the table)."""
    if e["error"]:
        return "timeout" if e["error"].startswith("timeout") else "error"
    return e["check"] or "-"


# --------------------------------------------------------------------------- report

def markdown(results: list[dict], backends: list[str], sf: float, repeat: int, startup: dict[str, float]) -> str:
    def s(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    musk = [b for b in backends if b != "duckdb"]
    timed = list(backends)
    head = [f"{LABELS[b]} s" for b in timed]
    lines = [
        (f"TPC-H SF {sf_label(sf)}, median of {repeat}, program run time only (compile, JVM/cluster start excluded). "
         f"check: each backend's result vs DuckDB's ({'/'.join(musk)}); a time marked ✗ is of a wrong result."),
        "",
        "| query | " + " | ".join(head) + " | rows | check |",
        "|---:|" + "---:|" * len(head) + "---:|:---|",
    ]
    notes = []
    for rec in results:
        cells = []
        for b in timed:
            e = rec["engines"][b]
            if e["error"]:
                cells.append(status(e))
            else:
                cells.append(s(e["median_s"]) + (" ✗" if e["check"] == "MISMATCH" else ""))
        checks = [status(rec["engines"][b]) for b in musk]
        check = "ok" if checks and all(c == "ok" for c in checks) else "/".join(checks)
        for b in backends:
            e = rec["engines"][b]
            if e["error"]:
                notes.append(f"Q{rec['query']:02d} {LABELS[b]}: {e['error']}")
            elif e["check"] == "MISMATCH":
                notes.append(f"Q{rec['query']:02d} {LABELS[b]}: result differs from DuckDB's: "
                             + " ".join(e.get("check_detail", "").split())[:300])
        rows = rec["rows"] if rec["rows"] is not None else "-"
        lines.append(f"| Q{rec['query']:02d} | " + " | ".join(cells) + f" | {rows} | {check} |")

    common = [r for r in results if all(r["engines"][b]["median_s"] for b in timed)]
    correct = [r for r in common if all(r["engines"][b]["check"] == "ok" for b in musk)]
    sets = [("geomean", common, f"{len(common)} of {len(results)} queries that ran on every engine")]
    if len(correct) != len(common):
        sets.append(("geomean, correct only", correct, f"{len(correct)} queries correct on every engine"))
    for label, sel, note in sets:
        g = [geomean([r["engines"][b]["median_s"] for r in sel]) for b in timed]
        lines.append(f"| **{label}** ({note}) | " + " | ".join(s(x) for x in g) + " | | |")
        if "duckdb" in timed:
            ratios = [geomean([r["engines"][b]["ratio_to_duckdb"] for r in sel]) if b != "duckdb" else 1.0
                      for b in timed]
            lines.append(f"| **{label} of ratio to DuckDB** | " + " | ".join(
                "-" if x is None else f"{x:.2f}x" for x in ratios) + " | | |")
    comp = {b: geomean([r["engines"][b].get("compile_s") for r in results]) for b in musk}
    lines.append("")
    lines.append("Compile time, once per query and backend (geomean over queries): "
                 + ", ".join(f"{LABELS[b]} {c * 1000:.0f} ms" for b, c in comp.items() if c) + ".")
    if startup:
        lines.append("Not timed, paid once before the first timed run: "
                     + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in startup.items()) + ".")
    if notes:
        lines += ["", "Errors and mismatches:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def summary(results: list[dict], backends: list[str]) -> dict:
    out: dict[str, Any] = {"queries_run": len(results)}
    for b in backends:
        es = [r["engines"][b] for r in results]
        out[b] = {
            "timed": sum(1 for e in es if e["median_s"]),
            "checked_ok": sum(1 for e in es if e["check"] == "ok"),
            "mismatched": [r["query"] for r, e in zip(results, es) if e["check"] == "MISMATCH"],
            "errors": {r["query"]: e["error"] for r, e in zip(results, es) if e["error"]},
            "geomean_s_own_queries": geomean([e["median_s"] for e in es]),
            "geomean_ratio_to_duckdb": geomean([e["ratio_to_duckdb"] for e in es]) if b != "duckdb" else None,
        }
    return out


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mod in ("dask", "distributed", "pyspark"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - informational only
            out[mod] = None
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr.splitlines()
        out["java"] = java[0] if java else None
    except OSError:
        out["java"] = None
    return out


# --------------------------------------------------------------------------- main

def report(paths: list[Path], out: Path | None) -> int:
    """Print (and with `out`, write) the table of one or more earlier runs.

    Why: a long run cut short (or resumed with --queries for the rest)
    leaves partial files; their union is still one honest table as long as
    the merged file says which run measured what (`merged_from`).
    """
    docs = [json.loads(p.read_text()) for p in paths]
    if len({(d["sf"], d["repeat"]) for d in docs}) != 1:
        raise SystemExit("--report: the files differ in --sf or --repeat")
    backends = [b for b in docs[0]["backends"] if all(b in d["backends"] for d in docs)]
    by_query: dict[int, dict] = {}
    for d in docs:
        for q in d["queries"]:
            by_query[q["query"]] = q
    results = [by_query[n] for n in sorted(by_query)]
    runs = [m["machine"] for d in docs for m in d["merged_from"]] if all("merged_from" in d for d in docs) \
        else [d["machine"] for d in docs]
    startup: dict[str, float] = {}
    for i, machine in enumerate(runs):
        for k, v in machine.get("startup_excluded_s", {}).items():
            startup[f"{k} (run {i + 1})" if len(runs) > 1 else k] = v
    table = markdown(results, backends, docs[0]["sf"], docs[0]["repeat"], startup)
    print(table)
    if out is not None:
        write_json(out, {
            "benchmark": "tpch_backends", "complete": all(d["complete"] for d in docs), "sf": docs[0]["sf"],
            "repeat": docs[0]["repeat"], "backends": backends,
            "merged_from": [{"file": str(p), "command": d["command"], "complete": d["complete"],
                             "machine": d["machine"], "queries": [q["query"] for q in d["queries"]]}
                            for p, d in zip(paths, docs)],
            "machine": docs[-1]["machine"], "summary": summary(results, backends),
            "table_markdown": table, "queries": results,
        })
    return 0


def parse_backends(text: str) -> list[str]:
    names = [b.strip().lower() for b in text.split(",") if b.strip()]
    bad = [b for b in names if b not in ALL_ENGINES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"backends are some of {', '.join(ALL_ENGINES)}, not {text!r}")
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1)")
    ap.add_argument("--backends", type=parse_backends, default=list(DEFAULT_ENGINES),
                    help=f"comma-separated engines to time, of {','.join(ALL_ENGINES)} "
                         f"(default {','.join(DEFAULT_ENGINES)}); DuckDB always provides the reference result")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions per engine; the median is reported")
    ap.add_argument("--queries", type=parse_queries, default=list(range(1, 23)),
                    help="comma-separated query numbers or ranges, e.g. 1,3,5-7 (default all 22)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds allowed per run before that engine's query is marked as timed out (default 600)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON results file (default benchmarks/results/tpch_backends_sf<SF>.json)")
    ap.add_argument("--data-root", type=Path, default=REPO / "benchmarks" / "data",
                    help="where generated data is cached (default benchmarks/data)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: DuckDB's default)")
    ap.add_argument("--report", type=Path, nargs="+", default=None, metavar="JSON",
                    help="run nothing: print the table of earlier runs' JSON files (partial ones too; a query "
                         "in several files is taken from the last), for the engines all of them timed; "
                         "with --out, also write them merged into one file")
    args = ap.parse_args(argv)
    if args.report is not None:
        return report(args.report, args.out)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    backends: list[str] = args.backends
    out = args.out or REPO / "benchmarks" / "results" / f"tpch_backends_sf{sf_label(args.sf)}.json"

    data_dir = ensure_data(args.sf, args.data_root)
    texts = tpch.queries()
    con = tpch.duckdb_connection(data_dir, threads=args.threads)
    info = machine_info(con)
    info.update(versions())
    print(f"data: {data_dir}; engines: {', '.join(backends)}; DuckDB threads: {info['duckdb_threads']}; "
          f"cpus: {info['cpus']}; load {info['loadavg_at_start']}", file=sys.stderr, flush=True)
    qdir = write_query_files(args.data_root, texts)

    command = "python benchmarks/tpch_backends.py " + " ".join(argv if argv is not None else sys.argv[1:])

    def document(table: str | None) -> dict:
        return {
            "benchmark": "tpch_backends",
            "complete": table is not None,  # False: a partial file written after each query
            "sf": args.sf,
            "repeat": args.repeat,
            "backends": backends,
            "command": command,
            "machine": info,
            "summary": summary(results, backends),
            "table_markdown": table,
            "queries": results,
        }

    engines = Engines()
    info["startup_excluded_s"] = engines.startup_s
    results: list[dict] = []
    for n in args.queries:
        print(f"Q{n:02d} ...", end=" ", file=sys.stderr, flush=True)
        rec = bench_query(n, texts[n], qdir / f"q{n:02d}.sql", data_dir, con, engines, backends,
                          args.repeat, args.timeout, warm_up=not results)
        results.append(rec)
        print(", ".join(f"{b} {e['median_s']:.3f} s {e['check'] or ''}".rstrip() if e["median_s"]
                        else f"{b} {e['error']}" for b, e in rec["engines"].items()), file=sys.stderr, flush=True)
        write_json(out, document(None), quiet=True)
    con.close()
    if hasattr(os, "getloadavg"):
        info["loadavg_at_end"] = os.getloadavg()

    table = markdown(results, backends, args.sf, args.repeat, engines.startup_s)
    print(table)
    write_json(out, document(table))
    if engines.spark is not None:
        engines.spark.stop()
    bad = [r["query"] for r in results for e in r["engines"].values() if e["error"] or e["check"] == "MISMATCH"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
