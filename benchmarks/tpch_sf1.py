"""TPC-H: Musketeer's local engine vs DuckDB, per query, on the same parquet files.

For each query, in one run and side by side:

  (a) compile time: parse + lower + passes + codegen, through the Python API
      (median of --repeat);
  (b) the local engine's run time: the compiled program exec'd in this
      process and its run() called (median of --repeat);
  (c) DuckDB's time for the same standard text over views on the same
      parquet files (median of --repeat, DuckDB's default thread count);

interleaving the engines per repetition (local, DuckDB, local, DuckDB, ...)
so drift on a shared machine hits both alike, and checking the local result
against DuckDB's with the test suite's comparison (tests/tpch.py).

    .venv/bin/python benchmarks/tpch_sf1.py --sf 1 --repeat 3

Data is generated once into benchmarks/data/sf<SF>/ and reused. Prints a
Markdown table with geometric means and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import tpch  # noqa: E402  (test/bench support code)


# --------------------------------------------------------------------------- data

sf_label = tpch.sf_label
ensure_data = tpch.ensure_data


# --------------------------------------------------------------------------- compile

def compile_program(sql_path: Path, data_dir: Path, backend: str = "local"):
    """(generated Program, phase timings in seconds) for one backend.

    Does what `musketeer compile WORKFLOW --backend B --data-dir DIR` does,
    through musketeer.api: open the file catalog (parquet footers are read
    when the frontend asks for a table), read + parse + lower the workflow
    file, run the IR passes, generate the program. "total" spans all of it;
    "parse" (which includes catalog lookups), "optimize" and "generate" are
    the phases. Shared with benchmarks/tpch_backends.py.
    """
    from musketeer import api

    engine = api.get_backend(backend)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    catalog = api.open_catalog(sql_path, str(data_dir))
    workflow = api.plan_workflow(sql_path, catalog, timings=timings)
    t1 = time.perf_counter()
    program = engine.generate(workflow)
    t2 = time.perf_counter()
    timings["generate"] = t2 - t1
    timings["total"] = t2 - t0
    return program, timings


def compile_query(sql_path: Path, data_dir: Path) -> tuple[str, dict[str, float]]:
    """(program text, phase timings in seconds) for the local backend."""
    program, timings = compile_program(sql_path, data_dir, "local")
    return program.text, timings


def load_program(text: str, name: str):
    """Exec a generated program as a module namespace; returns its run()."""
    ns: dict = {"__name__": f"musketeer_bench_{name}", "__file__": f"<{name}.py>"}
    exec(compile(text, f"<{name}.py>", "exec"), ns)
    return ns["run"]


# --------------------------------------------------------------------------- timing

class Timeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float | None):
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def handler(signum, frame):
        raise Timeout(f"timed out after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def one_line(e: BaseException) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text[:500]


def geomean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def bench_query(n: int, sql: str, sql_path: Path, data_dir: Path, con, repeat: int, timeout: float | None, check: bool) -> dict:
    rec: dict = {"query": n, "compile_s": [], "local_s": [], "duckdb_s": [], "error": None, "check": None}
    # (a) compile, repeated; keep the last program text.
    text = None
    try:
        for _ in range(repeat):
            text, phases = compile_query(sql_path, data_dir)
            rec["compile_s"].append(phases["total"])
            rec.setdefault("compile_phases_s", []).append(phases)
    except Exception as e:  # noqa: BLE001 - a failing query is a result, not a crash
        rec["error"] = "compile: " + one_line(e)
        rec["traceback"] = traceback.format_exc()
    run = None
    if text is not None:
        try:
            run = load_program(text, f"q{n:02d}")
        except Exception as e:  # noqa: BLE001
            rec["error"] = "load program: " + one_line(e)
            rec["traceback"] = traceback.format_exc()

    local_out = duck_out = None
    for _ in range(repeat):
        if run is not None:
            gc.collect()
            try:
                with time_limit(timeout):
                    t0 = time.perf_counter()
                    outputs = run()
                    rec["local_s"].append(time.perf_counter() - t0)
                local_out = outputs["result"] if "result" in outputs else next(iter(outputs.values()))
                del outputs
            except Exception as e:  # noqa: BLE001
                rec["error"] = "local run: " + one_line(e)
                rec["traceback"] = traceback.format_exc()
                run = None  # don't retry a failing / timed-out query
        gc.collect()
        t0 = time.perf_counter()
        duck_out = con.execute(sql).to_arrow_table()
        rec["duckdb_s"].append(time.perf_counter() - t0)

    rec["rows"] = duck_out.num_rows if duck_out is not None else None
    if check and local_out is not None and rec["error"] is None:
        try:
            tpch.assert_query_result(local_out, duck_out, sql)
            rec["check"] = "ok"
        except AssertionError as e:
            rec["check"] = "MISMATCH"
            rec["check_detail"] = str(e)[:4000]
    for k in ("compile_s", "local_s", "duckdb_s"):
        vals = rec[k]
        rec[k.replace("_s", "_median_s")] = statistics.median(vals) if vals and (k != "local_s" or rec["error"] is None) else None
    if rec["local_median_s"] and rec["duckdb_median_s"]:
        rec["ratio"] = rec["local_median_s"] / rec["duckdb_median_s"]
    else:
        rec["ratio"] = None
    return rec


# --------------------------------------------------------------------------- report

def machine_info(con) -> dict:
    import duckdb
    import pandas
    import pyarrow

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (e.g. a `git archive` export, to measure a commit
        # while others edit the working tree): say which commit it is.
        commit = os.environ.get("MUSKETEER_SOURCE_COMMIT")
    try:  # uncommitted changes to product code make the commit id an incomplete description
        dirty = [line[3:] for line in subprocess.run(
            ["git", "status", "--porcelain", "--", "musketeer", "frontends", "ir", "backends"],
            cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        dirty = None
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 2**20, 1)
    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "uncommitted_product_changes": dirty,
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "mem_gib": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "duckdb": duckdb.__version__,
        "duckdb_threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def markdown(results: list[dict], sf: float, repeat: int) -> str:
    def ms(x):
        return "-" if x is None else f"{x * 1000:.1f}"

    def s(x):
        return "-" if x is None else f"{x:.3f}"

    def r(x):
        return "-" if x is None else f"{x:.2f}"

    lines = [
        f"TPC-H SF {sf_label(sf)}, median of {repeat}. local = Musketeer local engine (pandas + pyarrow); "
        "ratio = local / DuckDB (lower is better for Musketeer).",
        "",
        "| query | compile ms | local s | DuckDB s | ratio | rows | check |",
        "|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for rec in results:
        status = rec["check"] or ("error: " + rec["error"] if rec["error"] else "-")
        status = status.replace("|", "\\|")
        if len(status) > 120:
            status = status[:117] + "..."
        lines.append(
            f"| Q{rec['query']:02d} | {ms(rec['compile_median_s'])} | {s(rec['local_median_s'])} | "
            f"{s(rec['duckdb_median_s'])} | {r(rec['ratio'])} | {rec['rows'] if rec['rows'] is not None else '-'} | {status} |"
        )
    both = [x for x in results if x["local_median_s"] and x["duckdb_median_s"]]
    ok = [x for x in both if x["check"] == "ok"]
    rows = [("geomean", both, f"{len(both)} of {len(results)} ran on both")]
    if len(ok) != len(both):
        rows.append(("geomean, correct only", ok, f"{len(ok)} matched DuckDB"))
    for label, sel, note in rows:
        g_compile = geomean([x["compile_median_s"] for x in sel])
        g_local = geomean([x["local_median_s"] for x in sel])
        g_duck = geomean([x["duckdb_median_s"] for x in sel])
        g_ratio = geomean([x["ratio"] for x in sel])
        lines.append(f"| **{label}** ({note}) | {ms(g_compile)} | {s(g_local)} | {s(g_duck)} | {r(g_ratio)} | | |")
    return "\n".join(lines)


def summary(results: list[dict]) -> dict:
    both = [x for x in results if x["local_median_s"] and x["duckdb_median_s"]]
    ok = [x for x in both if x["check"] == "ok"]

    def means(sel):
        return {
            "geomean_compile_s": geomean([x["compile_median_s"] for x in sel]),
            "geomean_local_s": geomean([x["local_median_s"] for x in sel]),
            "geomean_duckdb_s": geomean([x["duckdb_median_s"] for x in sel]),
            "geomean_ratio": geomean([x["ratio"] for x in sel]),
        }

    return {
        "queries_run": len(results),
        "queries_timed_on_both": len(both),
        "queries_checked_ok": len(ok),
        "mismatched": [x["query"] for x in results if x["check"] == "MISMATCH"],
        "errors": {x["query"]: x["error"] for x in results if x["error"]},
        **means(both),
        "correct_only": means(ok),
    }


# --------------------------------------------------------------------------- main

def parse_queries(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part.lstrip("qQ")))
    bad = [q for q in out if not 1 <= q <= 22]
    if bad:
        raise argparse.ArgumentTypeError(f"TPC-H queries are 1..22, not {bad}")
    return out


def write_query_files(data_root: Path, texts: dict[int, str]) -> Path:
    """Write the unchanged standard texts to data_root/queries/qNN.sql (the
    compiler reads workflows from files); returns that directory."""
    qdir = data_root / "queries"
    qdir.mkdir(parents=True, exist_ok=True)
    for n, sql in texts.items():
        (qdir / f"q{n:02d}.sql").write_text(sql)
    return qdir


def write_json(out: Path, doc: dict, quiet: bool = False) -> None:
    """Write the results atomically (a crashed run never leaves half a file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    tmp.replace(out)
    if not quiet:
        print(f"\nwrote {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions per engine; the median is reported")
    ap.add_argument("--queries", type=parse_queries, default=list(range(1, 23)),
                    help="comma-separated query numbers or ranges, e.g. 1,3,5-7 (default all 22)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON results file (default benchmarks/results/tpch_sf<SF>.json)")
    ap.add_argument("--data-root", type=Path, default=REPO / "benchmarks" / "data",
                    help="where generated data is cached (default benchmarks/data)")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds allowed per local run before the query is marked as timed out (default 900)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: DuckDB's default)")
    ap.add_argument("--no-check", dest="check", action="store_false",
                    help="skip comparing the local result with DuckDB's")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    out = args.out or REPO / "benchmarks" / "results" / f"tpch_sf{sf_label(args.sf)}.json"

    data_dir = ensure_data(args.sf, args.data_root)
    texts = tpch.queries()
    con = tpch.duckdb_connection(data_dir, threads=args.threads)
    info = machine_info(con)
    print(f"data: {data_dir}; DuckDB threads: {info['duckdb_threads']}; cpus: {info['cpus']}", file=sys.stderr)

    qdir = write_query_files(args.data_root, texts)

    # One untimed compile first, so one-time imports (sqlglot, jinja2, the
    # backend) are not billed to whichever query happens to come first.
    with contextlib.suppress(Exception):
        compile_query(qdir / f"q{args.queries[0]:02d}.sql", data_dir)

    results = []
    for n in args.queries:
        print(f"Q{n:02d} ...", end=" ", file=sys.stderr, flush=True)
        rec = bench_query(n, texts[n], qdir / f"q{n:02d}.sql", data_dir, con, args.repeat, args.timeout, args.check)
        results.append(rec)
        print(
            f"compile {rec['compile_median_s'] and rec['compile_median_s'] * 1000 or float('nan'):.1f} ms, "
            f"local {rec['local_median_s'] or float('nan'):.3f} s, duckdb {rec['duckdb_median_s']:.3f} s, "
            f"check {rec['check']}" + (f", ERROR {rec['error']}" if rec["error"] else ""),
            file=sys.stderr, flush=True,
        )
    con.close()
    if hasattr(os, "getloadavg"):
        info["loadavg_at_end"] = os.getloadavg()

    table = markdown(results, args.sf, args.repeat)
    print(table)
    doc = {
        "benchmark": "tpch",
        "sf": args.sf,
        "repeat": args.repeat,
        "command": "python benchmarks/tpch_sf1.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info,
        "summary": summary(results),
        "queries": results,
    }
    write_json(out, doc)
    bad = [r["query"] for r in results if r["error"] or r["check"] == "MISMATCH"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
