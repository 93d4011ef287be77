"""TPC-H: Musketeer's duckdb engine vs DuckDB on the original query text.

Per query, interleaved in one run (ours, DuckDB, ours, DuckDB, ...):

  ours:   the duckdb engine's generated program, exec'd once, its run()
          called: a fresh DuckDB connection, views over the parquet files
          (with the workflow's column types), the generated SQL, the result
          fetched as a DataFrame of pyarrow-backed columns;
  DuckDB: the same steps by hand for the standard query text: a fresh
          connection, views over the same files, the query, the result as
          a DataFrame of pyarrow-backed columns.

Both results are checked against each other with the test suite's
comparison. Prints a Markdown table with the geometric means.

    .venv/bin/python benchmarks/tpch_duckdb.py --data benchmarks/data/sf1 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import tpch  # noqa: E402

from musketeer import api  # noqa: E402
from musketeer.backends.common.loader import load_program  # noqa: E402


def duckdb_run(sql: str, data: Path):
    import duckdb

    con = duckdb.connect()
    try:
        for t, p in tpch.table_paths(data).items():
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{p}')")
        return tpch.arrow_to_pandas(con.execute(sql).to_arrow_table())
    finally:
        con.close()


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="directory with the 8 TPC-H parquet files")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--queries", default="1-22")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lo, _, hi = args.queries.partition("-")
    numbers = range(int(lo), int(hi or lo) + 1)
    texts = tpch.queries()
    backend = api.get_backend("duckdb")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in numbers:
            path = Path(tmp) / f"q{n:02d}.sql"
            path.write_text(texts[n])
            t0 = time.perf_counter()
            program = backend.generate(api.plan_workflow(path, data_dir=str(args.data)))
            compile_s = time.perf_counter() - t0
            module = load_program(program)
            ours, theirs = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                got = module.run()["result"]
                ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                expected = duckdb_run(texts[n], args.data)
                theirs.append(time.perf_counter() - t0)
            tpch.assert_query_result(got, expected, texts[n])
            rec = {"q": n, "compile": compile_s, "ours": statistics.median(ours), "duckdb": statistics.median(theirs)}
            rec["ratio"] = rec["ours"] / rec["duckdb"]
            rows.append(rec)
            print(f"Q{n:02d} ours {rec['ours']:.3f} s  duckdb {rec['duckdb']:.3f} s  x{rec['ratio']:.2f}  "
                  f"(compile {compile_s:.2f} s)", file=sys.stderr, flush=True)
    print("| query | duckdb engine (s) | DuckDB, original SQL (s) | ratio | compile (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| Q{r['q']} | {r['ours']:.3f} | {r['duckdb']:.3f} | {r['ratio']:.2f} | {r['compile']:.2f} |")
    g_ours, g_theirs = geomean([r["ours"] for r in rows]), geomean([r["duckdb"] for r in rows])
    print(f"| geomean | {g_ours:.3f} | {g_theirs:.3f} | {g_ours / g_theirs:.2f} | |")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "geomean_ours": g_ours, "geomean_duckdb": g_theirs}, indent=1))


if __name__ == "__main__":
    main()
