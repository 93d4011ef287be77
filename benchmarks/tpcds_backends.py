"""TPC-DS on every engine: the 99 queries through Musketeer vs DuckDB, counted and timed.

For each engine and each of the 99 standard queries (DuckDB's tpcds
extension, unchanged texts), in one process:

  * plan the query once (parse + lower + IR passes, through musketeer.api,
    as `musketeer run` does; timed as "plan");
  * per engine, generate and run the program once (`api.execute_workflow`:
    the engine's capability check, codegen, the generated program's run()
    in this process; timed as "run", generation included), and compare the
    result with DuckDB's on the same parquet files with the test suite's
    comparison (tests/tpcds.py: assert_query_result);
  * classify: ok; refused (a MusketeerError with a source location: what
    `musketeer run` prints as FILE:LINE:COL, exit 2); wrong (a result that
    differs from DuckDB's); error (anything else: an internal error, a
    refusal without a location, a timeout).

Process-wide start-up is paid before the first timed query and reported
apart: the Spark JVM + SparkSession and the CIEL local cluster (one
untimed warm-up query per engine). Dask runs on its local threaded
scheduler, as `musketeer run --backend dask` does without a scheduler.

    .venv/bin/python benchmarks/tpcds_backends.py --sf 0.01 --backends local,duckdb,dask,ciel,spark

Prints a Markdown summary (per engine: counts and total times) and writes
JSON (--out) with every query's status, times and failure detail. The exit
status is 1 when any query was wrong or failed with an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.tpch_sf1 import Timeout, machine_info, one_line, time_limit, write_json  # noqa: E402
from benchmarks.tpch_backends import versions  # noqa: E402
from tests import tpch, tpcds  # noqa: E402  (test/bench support code)

ENGINES = ("local", "duckdb", "dask", "ciel", "spark")
STATUSES = ("ok", "refused", "wrong", "error")
WARM_UP_QUERY = 96  # a small join + count: starts the JVM / the cluster before timing


def plan(sql_path: Path, data_dir: Path) -> tuple[Any, float]:
    from musketeer import api

    t0 = time.perf_counter()
    workflow = api.plan_workflow(sql_path, data_dir=str(data_dir))
    return workflow, time.perf_counter() - t0


def run_engine(engine: str, workflow: Any, timeout: float | None) -> tuple[Any, float]:
    """(result frame, seconds) of generating and running the planned workflow on `engine`."""
    from musketeer import api

    t0 = time.perf_counter()
    with time_limit(timeout):
        run = api.execute_workflow(workflow, backend=engine, passes=False)
    return run.result.outputs["result"], time.perf_counter() - t0


def classify(exc: BaseException) -> str:
    from musketeer.ir import MusketeerError

    if isinstance(exc, MusketeerError) and exc.loc is not None and not isinstance(exc, Timeout):
        return "refused"
    return "error"


def cancel(engine: str) -> None:
    """Stop Spark jobs left running after a timeout, so they do not load later queries."""
    if engine == "spark":
        try:
            from pyspark.sql import SparkSession

            session = SparkSession.getActiveSession()
            if session is not None:
                session.sparkContext.cancelAllJobs()
        except Exception:  # noqa: BLE001 - best effort
            pass


def bench_query(n: int, sql: str, sql_path: Path, data_dir: Path, con: Any, engines: list[str],
                timeout: float | None) -> dict:
    rec: dict[str, Any] = {"query": n, "engines": {}}
    t0 = time.perf_counter()
    expected = tpcds.duckdb_answer(sql, con)
    rec["duckdb_native_s"] = time.perf_counter() - t0
    rec["rows"] = len(expected)
    try:
        workflow, rec["plan_s"] = plan(sql_path, data_dir)
    except Exception as exc:  # noqa: BLE001 - a failing query is a result
        for e in engines:
            rec["engines"][e] = {"status": classify(exc), "detail": "plan: " + one_line(exc),
                                 "traceback": traceback.format_exc(), "run_s": None}
        return rec
    for e in engines:
        entry: dict[str, Any] = {"run_s": None, "detail": None}
        try:
            actual, entry["run_s"] = run_engine(e, workflow, timeout)
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, Timeout):
                cancel(e)
            entry["status"] = classify(exc)
            entry["detail"] = ("timeout: " if isinstance(exc, Timeout) else "") + one_line(exc)
            entry["traceback"] = traceback.format_exc()
            rec["engines"][e] = entry
            continue
        try:
            tpcds.assert_query_result(actual, expected, sql)
            entry["status"] = "ok"
        except AssertionError as exc:
            entry["status"] = "wrong"
            entry["detail"] = str(exc)[:4000]
        rec["engines"][e] = entry
    return rec


def warm_up(engines: list[str], sql_path: Path, data_dir: Path, timeout: float | None) -> dict[str, float]:
    """Start each cluster engine once (untimed): the JVM, the CIEL cluster, dask's imports."""
    startup: dict[str, float] = {}
    workflow, _ = plan(sql_path, data_dir)
    for e in engines:
        t0 = time.perf_counter()
        try:
            run_engine(e, workflow, timeout)
        except Exception:  # noqa: BLE001 - the timed runs record errors
            pass
        startup[e] = time.perf_counter() - t0
    return startup


def summary(results: list[dict], engines: list[str]) -> dict:
    out: dict[str, Any] = {}
    for e in engines:
        es = [(r["query"], r["engines"][e]) for r in results if e in r["engines"]]
        out[e] = {s: [q for q, x in es if x["status"] == s] for s in STATUSES}
        out[e]["queries_run"] = len(es)
        out[e]["run_s_total"] = sum(x["run_s"] for _, x in es if x["run_s"] is not None)
        out[e]["run_s_total_ok"] = sum(x["run_s"] for _, x in es if x["status"] == "ok")
    out["duckdb_native_s_total"] = sum(r["duckdb_native_s"] for r in results)
    out["plan_s_total"] = sum(r.get("plan_s") or 0.0 for r in results)
    return out


def markdown(results: list[dict], engines: list[str], sf: float, startup: dict[str, float]) -> str:
    s = summary(results, engines)
    n = len(results)
    lines = [
        f"TPC-DS SF {tpch.sf_label(sf)}, {n} queries, each run once per engine. run s: the sum over the "
        "queries run of codegen + the generated program's run (planning excluded: shared, below); "
        "ok / refused / wrong / error as classified by benchmarks/tpcds_backends.py.",
        "",
        "| engine | queries run | ok | refused | wrong | error | run s (all) | run s (ok only) |",
        "|:---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in engines:
        x = s[e]
        lines.append(f"| {e} | {x['queries_run']} | {len(x['ok'])} | {len(x['refused'])} | {len(x['wrong'])} "
                     f"| {len(x['error'])} | {x['run_s_total']:.1f} | {x['run_s_total_ok']:.1f} |")
    lines.append(f"| DuckDB itself (the oracle) | {n} | | | | | {s['duckdb_native_s_total']:.1f} | |")
    lines.append("")
    lines.append(f"Planning (parse + lower + IR passes, once per query, shared by the engines): "
                 f"{s['plan_s_total']:.1f} s in total.")
    if startup:
        lines.append("Not timed, paid once before the first query (warm-up run of Q"
                     f"{WARM_UP_QUERY:02d}): " + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items()) + ".")
    notes = []
    for r in results:
        for e in engines:
            x = r["engines"].get(e)
            if x and x["status"] != "ok":
                notes.append(f"Q{r['query']:02d} {e}: {x['status']}: " + " ".join((x["detail"] or "").split())[:300])
    if notes:
        lines += ["", "Not ok:", ""] + [f"- {t}" for t in notes]
    return "\n".join(lines)


def report(paths: list[Path]) -> int:
    """Print the summary of earlier runs' JSON files (partial ones too).

    Why: a run cut short, or engines run as separate processes (Spark alone,
    say), still make one honest table: each engine's counts cover the
    queries it ran, which the table shows."""
    docs = [json.loads(p.read_text()) for p in paths]
    if len({d["sf"] for d in docs}) != 1:
        raise SystemExit("--report: the files differ in --sf")
    engines = list(dict.fromkeys(e for d in docs for e in d["backends"]))
    by_query: dict[int, dict] = {}
    for d in docs:
        for q in d["queries"]:
            rec = by_query.setdefault(q["query"], {**q, "engines": {}})
            rec["engines"].update(q["engines"])
    results = [by_query[n] for n in sorted(by_query)]
    startup = {k: v for d in docs for k, v in d["machine"].get("startup_excluded_s", {}).items()}
    print(markdown(results, engines, docs[0]["sf"], startup))
    for p, d in zip(paths, docs):
        print(f"\n{p}: {d['command']} ({'complete' if d['complete'] else 'partial'}: "
              f"{len(d['queries'])} queries; commit {d['machine'].get('git_commit')}, "
              f"started {d['machine'].get('date')}, load {d['machine'].get('loadavg_at_start')})")
    return 0


def parse_queries(text: str) -> list[int]:
    """'1,3,5-7' -> [1, 3, 5, 6, 7] (TPC-DS queries are 1..99)."""
    out: list[int] = []
    for part in (p.strip().lstrip("qQ") for p in text.split(",")):
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    bad = [q for q in out if q not in tpcds.QUERIES]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"TPC-DS queries are 1..99, not {text!r}")
    return list(dict.fromkeys(out))


def parse_engines(text: str) -> list[str]:
    names = [b.strip().lower() for b in text.split(",") if b.strip()]
    bad = [b for b in names if b not in ENGINES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"engines are some of {', '.join(ENGINES)}, not {text!r}")
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sf", type=float, default=0.01, help="scale factor (default 0.01)")
    ap.add_argument("--backends", type=parse_engines, default=list(ENGINES),
                    help=f"comma-separated engines, of {','.join(ENGINES)} (default all)")
    ap.add_argument("--queries", type=parse_queries, default=list(tpcds.QUERIES),
                    help="comma-separated query numbers or ranges, e.g. 1,3,5-7 (default all 99)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per query and engine (default 600)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON results file (default benchmarks/results/tpcds_backends_sf<SF>.json)")
    ap.add_argument("--data-root", type=Path, default=REPO / "benchmarks" / "data" / "tpcds",
                    help="where generated data is cached (default benchmarks/data/tpcds)")
    ap.add_argument("--report", type=Path, nargs="+", default=None, metavar="JSON",
                    help="run nothing: print the summary of earlier runs' JSON files (partial ones too), "
                         "each engine counted over the queries it ran")
    args = ap.parse_args(argv)
    if args.report is not None:
        return report(args.report)
    engines: list[str] = args.backends
    out = args.out or REPO / "benchmarks" / "results" / f"tpcds_backends_sf{tpch.sf_label(args.sf)}.json"

    data_dir = tpcds.ensure_data(args.sf, args.data_root)
    texts = tpcds.queries()
    paths = tpcds.write_query_files(texts, data_dir / "queries")
    con = tpcds.duckdb_connection(data_dir)
    info = machine_info(con)
    info.update(versions())
    print(f"data: {data_dir}; engines: {', '.join(engines)}; cpus: {info['cpus']}; "
          f"load {info['loadavg_at_start']}", file=sys.stderr, flush=True)
    command = "python benchmarks/tpcds_backends.py " + " ".join(argv if argv is not None else sys.argv[1:])
    startup = warm_up([e for e in engines if e in ("dask", "ciel", "spark")], paths[WARM_UP_QUERY], data_dir,
                      args.timeout)
    info["startup_excluded_s"] = startup
    results: list[dict] = []

    def document(table: str | None) -> dict:
        return {"benchmark": "tpcds_backends", "complete": table is not None, "sf": args.sf,
                "backends": engines, "command": command, "machine": info,
                "summary": summary(results, engines), "table_markdown": table, "queries": results}

    for n in args.queries:
        print(f"Q{n:02d} ...", end=" ", file=sys.stderr, flush=True)
        rec = bench_query(n, texts[n], paths[n], data_dir, con, engines, args.timeout)
        results.append(rec)
        print(", ".join(f"{e} {x['status']}" + (f" {x['run_s']:.2f} s" if x["run_s"] is not None else "")
                        for e, x in rec["engines"].items()), file=sys.stderr, flush=True)
        write_json(out, document(None), quiet=True)
    con.close()
    if hasattr(os, "getloadavg"):
        info["loadavg_at_end"] = os.getloadavg()
    table = markdown(results, engines, args.sf, startup)
    print(table)
    write_json(out, document(table))
    bad = [r for r in results for x in r["engines"].values() if x["status"] in ("wrong", "error")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
