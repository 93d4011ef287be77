"""Does `--backend auto` pick the fastest backend?

For each setup (TPC-H query x scale factor), run the workflow on every
available backend (median of --repeat runs, generated program only), ask the
planner which plan it would choose, and count the setups where auto's choice
is within 10% of the fastest measured backend. Prints a Markdown table and
writes JSON (every timing) to --out.

    .venv/bin/python benchmarks/auto_choice.py --sf 0.01,0.1 --queries 1,3,6,18
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backends.base import RunOptions  # noqa: E402
from cost_model import load_profile  # noqa: E402
from musketeer import api  # noqa: E402
from musketeer.autoplan import available_engines, choose_plan  # noqa: E402
from tests import tpch  # noqa: E402


def measure(engine, workflow, repeat: int) -> float:
    program = engine.generate(workflow)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        engine.run(program, RunOptions())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sf", default="0.01,0.1", help="scale factors, comma-separated")
    ap.add_argument("--queries", default="1,3,6,18")
    ap.add_argument("--backends", default=None, help="default: every available backend")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "auto_choice.json"))
    args = ap.parse_args()
    profile = load_profile(args.profile)
    engines = available_engines(RunOptions(), args.backends.split(",") if args.backends else None)
    print(f"backends available: {', '.join(engines)}; profile: {profile.source}", file=sys.stderr)
    queries = tpch.queries()
    rows, hits = [], 0
    for sf in [float(s) for s in args.sf.split(",")]:
        data = tpch.ensure_data(sf, ROOT / "benchmarks" / "data")
        for q in [int(x) for x in args.queries.split(",")]:
            qfile = ROOT / "benchmarks" / "data" / "queries" / f"q{q:02d}.sql"
            if not qfile.exists():
                qfile.parent.mkdir(parents=True, exist_ok=True)
                qfile.write_text(queries[q])
            wf = api.plan_workflow(qfile, data_dir=str(data))
            measured = {}
            for name, engine in engines.items():
                try:
                    measured[name] = measure(engine, wf, args.repeat)
                except Exception as e:  # noqa: BLE001 - a backend that cannot run it is reported
                    print(f"  sf {sf} q{q} {name}: failed ({type(e).__name__}: {e})", file=sys.stderr)
            plan, _, _ = choose_plan(wf, profile, RunOptions(), list(engines))
            choice = " -> ".join(s.backend for s in plan.stages)
            fastest = min(measured, key=measured.get)
            auto_time = measured.get(choice) if len(plan.stages) == 1 else None
            ok = auto_time is not None and auto_time <= 1.10 * measured[fastest]
            hits += ok
            rows.append({"sf": sf, "query": q, "measured": measured, "auto": choice,
                         "fastest": fastest, "within_10pct": ok, "estimate": plan.total})
            print(f"  sf {sf} q{q}: {measured} auto={choice} ok={ok}", file=sys.stderr)
    names = list(engines)
    print("| setup | " + " | ".join(f"{n} s" for n in names) + " | fastest | auto chose | within 10% |")
    print("|---|" + "---:|" * len(names) + "---|---|---|")
    for r in rows:
        cells = " | ".join(f"{r['measured'][n]:.3f}" if n in r["measured"] else "-" for n in names)
        print(f"| TPC-H q{r['query']} SF {r['sf']} | {cells} | {r['fastest']} | {r['auto']} | "
              f"{'yes' if r['within_10pct'] else 'no'} |")
    print(f"\nauto within 10% of the fastest in {hits}/{len(rows)} setups")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"backends": names, "profile": profile.source, "setups": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
