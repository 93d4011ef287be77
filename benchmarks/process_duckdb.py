"""Whole processes, as a user waits for them: `musketeer run --backend auto`
against a Python process that runs DuckDB on the same SQL, per TPC-H query.

For each query, interleaved (median of --repeat):

  first:   `musketeer run qNN.sql --backend auto --data-dir D --output r.parquet`
           with an empty compiled-program cache;
  cached:  the same command again (the cache holds the program: no parsing
           or planning);
  duckdb:  `python -c "import duckdb; ... COPY (<query>) TO 'r.parquet'"`
           over views on the same files;

plus `musketeer --help` and `python -c pass` for the fixed costs. Both
outputs are checked to hold the same rows.

    .venv/bin/python benchmarks/process_duckdb.py --data benchmarks/data/sf1 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import tpch  # noqa: E402

PY = sys.executable
MUSKETEER = str(Path(PY).parent / "musketeer")

DUCKDB_PROGRAM = """
import sys, duckdb
data, query, out = sys.argv[1:4]
con = duckdb.connect()
for t in ("nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem"):
    con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data}/{t}.parquet')")
sql = open(query).read().strip().rstrip(";")
con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
"""


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {done.stderr[-2000:]}")
    return elapsed


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--queries", default="1-22")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lo, _, hi = args.queries.partition("-")
    numbers = range(int(lo), int(hi or lo) + 1)
    texts = tpch.queries()
    data = args.data.resolve()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / "cache"
        env = {**os.environ, "MUSKETEER_CACHE_DIR": str(cache), "MUSKETEER_CACHE": "on"}
        (work / "duckdb_query.py").write_text(DUCKDB_PROGRAM)
        fixed = {"help": [], "python": []}
        for _ in range(5):
            fixed["help"].append(timed([MUSKETEER, "--help"], env, work))
            fixed["python"].append(timed([PY, "-c", "pass"], env, work))
        for n in numbers:
            query = work / f"q{n:02d}.sql"
            query.write_text(texts[n])
            run = [MUSKETEER, "run", query.name, "--backend", "auto", "--data-dir", str(data), "--output", "ours.parquet"]
            first, cached, theirs = [], [], []
            for _ in range(args.repeat):
                shutil.rmtree(cache, ignore_errors=True)
                first.append(timed(run, env, work))
                cached.append(timed(run, env, work))
                theirs.append(timed([PY, "duckdb_query.py", str(data), query.name, "theirs.parquet"], env, work))
            import pyarrow.parquet as pq

            tpch.assert_query_result(tpch.arrow_to_pandas(pq.read_table(work / "ours.parquet")),
                                     tpch.arrow_to_pandas(pq.read_table(work / "theirs.parquet")), texts[n])
            engine = json.loads(next(cache.glob("*.json")).read_text())["backend"]
            rec = {"q": n, "engine": engine, "first": statistics.median(first), "cached": statistics.median(cached),
                   "duckdb": statistics.median(theirs)}
            rows.append(rec)
            print(f"Q{n:02d} {engine}: first {rec['first']:.2f} s, cached {rec['cached']:.2f} s, "
                  f"duckdb process {rec['duckdb']:.2f} s", file=sys.stderr, flush=True)
    help_s, python_s = statistics.median(fixed["help"]), statistics.median(fixed["python"])
    print(f"`musketeer --help`: {help_s:.3f} s (median of 5; `python -c pass`: {python_s:.3f} s)\n")
    print("| query | auto picked | musketeer run, first (s) | cached re-run (s) | DuckDB process (s) | first / DuckDB | cached / DuckDB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| Q{r['q']} | {r['engine']} | {r['first']:.2f} | {r['cached']:.2f} | {r['duckdb']:.2f} | "
              f"{r['first'] / r['duckdb']:.2f} | {r['cached'] / r['duckdb']:.2f} |")
    g = {k: geomean([r[k] for r in rows]) for k in ("first", "cached", "duckdb")}
    print(f"| geomean | | {g['first']:.2f} | {g['cached']:.2f} | {g['duckdb']:.2f} | {g['first'] / g['duckdb']:.2f} | "
          f"{g['cached'] / g['duckdb']:.2f} |")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "geomean": g, "help": help_s, "python": python_s}, indent=1))


if __name__ == "__main__":
    main()
