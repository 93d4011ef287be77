"""Long fuzz runs from the repository root:

    python -m tests.fuzz [sql] --queries 10000 --engines local,dask,spark,ciel --seed 1
    python -m tests.fuzz graphs --graphs 500 --engines local,ciel --seed 1

`--save` writes each shrunk failure to tests/workflows/fuzz/ (the
conformance suite runs what is there); `--start N --queries 1` re-runs one
case. Exit status 1 when any engine disagreed with its oracle.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz import graphs, shrink, sql
from tests.fuzz.queries import FEATURES


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    what = argv.pop(0) if argv and argv[0] in ("sql", "graphs") else "sql"
    parser = argparse.ArgumentParser(prog=f"python -m tests.fuzz {what}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engines", default="local", help="comma-separated backends (local,dask,spark,ciel)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    if what == "sql":
        parser.add_argument("--queries", type=int, default=200)
        parser.add_argument("--start", type=int, default=0, help="first case number")
        parser.add_argument("--no-shrink", action="store_true")
        parser.add_argument("--save", action="store_true", help=f"save shrunk failures under {shrink.REGRESSIONS}")
        parser.add_argument("--avoid", default="", help="comma-separated features to leave out: "
                            + ", ".join(f"{k} ({v})" for k, v in FEATURES.items()))
    else:
        parser.add_argument("--graphs", type=int, default=100)
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    began = time.time()

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="musketeer-fuzz-") as tmp:
        if what == "sql":
            def progress(run: sql.SqlRun) -> None:
                if run.queries % 50 == 0:
                    say(f"[{time.time() - began:6.0f} s] {run.summary()}")
                if run.failures and run.failures[-1].case == args.start + run.queries - 1:
                    say(str(run.failures[-1]))

            run = sql.fuzz_sql(args.seed, args.queries, engines, Path(tmp), start=args.start,
                               minimize=not args.no_shrink, save_to=shrink.REGRESSIONS if args.save else None,
                               progress=progress, avoid=frozenset(a for a in args.avoid.split(",") if a))
            print(run.summary())
            for failure in run.failures:
                print(failure)
            return 1 if run.failures else 0

        def graph_progress(done: int, run: graphs.GraphRun) -> None:
            if done % 10 == 0:
                say(f"[{time.time() - began:6.0f} s] {done} graphs, {run.checks} checks, "
                    f"{len(run.disagreements)} disagreement(s)")

        grun = graphs.fuzz_graphs(args.seed, args.graphs, engines, Path(tmp), progress=graph_progress)
        print(f"seed {args.seed}: {args.graphs} graphs on {','.join(engines)}: {grun.checks} checks, "
              f"{grun.skipped} skipped (networkx did not converge), {len(grun.disagreements)} disagreement(s) "
              f"in {time.time() - began:.0f} s; shapes {dict(sorted(grun.shapes.items()))}")
        for d in grun.disagreements:
            print(d)
        return 1 if grun.disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
