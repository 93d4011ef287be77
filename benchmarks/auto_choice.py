"""Does `--backend auto` pick the fastest backend?

For each setup (a workflow x an input size: TPC-H queries at several scale
factors, PageRank on three graphs, k-means on two point sets) this runs

    python -m musketeer run WORKFLOW --backend B --output OUT.parquet

as a fresh process for every available backend B and for `--backend auto`,
and times the whole process, as a user meets it: interpreter start, imports,
parse + optimize + codegen, the engine's start (Spark JVM and session, CIEL
workers, dask's threads), the run, and writing the result to Parquet. The
same is timed for every backend and for auto. Backends of one setup run
interleaved, in a rotating order per repetition; the median is kept. A
backend still running after --timeout-factor x the fastest time so far
(+ --timeout-slack seconds) is stopped (its whole process group) and
recorded as a lower bound (">T"): it is not the fastest, which is all the
count needs. Every backend's result is checked against local's.

Auto's choice is the plan `musketeer.autoplan.choose_plan` returns for the
profile given (the same call `run --backend auto` makes). Auto's time is
the chosen backend's measured process time plus the planning time (that
choose_plan call, timed here: statistics from Parquet footers and samples,
the DP), since that is all `--backend auto` adds to a `--backend B` run
that B's own timing does not already include. It counts as "within 10%"
when that is within 10% of the fastest backend's time. (A plan mixing
backends has no single-backend time: it is then judged by auto's own
measured process time, if the run timed one.) Unless --no-auto-run, the
`--backend auto` process is timed as well and shown for reference.

`--replay JSON...` re-plans the setups of earlier runs with the current cost
model and profile, without running anything (the measured times, and the
planning time, are the files'): the way to check a model change against
measurements.

    flock /tmp/musketeer-bench.lock .venv/bin/python benchmarks/auto_choice.py \\
        --profile benchmarks/results/calibrated_profile.json --repeat 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from musketeer.backends.base import RunOptions
from musketeer.cost_model import load_profile
from musketeer import api
from musketeer.autoplan import (
    candidates,
    available_engines,
    choose_plan,
    per_backend_estimates,
)
from tests import tpch

DATA = ROOT / "benchmarks" / "data"
WORKFLOWS = ROOT / "benchmarks" / "workflows"
DEFAULT_TPCH = "0.01:1,3,6,18;0.1:1,3,6,18;1:1,3,5,6,12,18"
GRAPHS = {"4k": "ba_4005_5_s2024", "10k": "ba_10005_5_s2024", "200k": "ba_200005_5_s2024"}
POINTS = {"240": str(ROOT / "examples" / "data" / "points.csv"), "200k": str(DATA / "kmeans" / "points_200000.parquet")}


@dataclass
class Setup:
    label: str
    workflow: str
    args: list[str]  # --data-dir / --table arguments
    measured: dict[str, float] = field(default_factory=dict)
    runs: dict[str, list[float]] = field(default_factory=dict)
    lower_bound: dict[str, bool] = field(default_factory=dict)
    mismatch: dict[str, str] = field(default_factory=dict)


def tpch_setups(spec: str) -> list[Setup]:
    out = []
    queries = tpch.queries()
    for part in spec.split(";"):
        if not part.strip():
            continue
        sf_text, qs = part.split(":")
        sf = float(sf_text)
        data = tpch.ensure_data(sf, DATA)
        for q in [int(x) for x in qs.split(",")]:
            qfile = DATA / "queries" / f"q{q:02d}.sql"
            if not qfile.exists():
                qfile.parent.mkdir(parents=True, exist_ok=True)
                qfile.write_text(queries[q])
            out.append(Setup(f"TPC-H q{q} SF {sf:g}", str(qfile), ["--data-dir", str(data)]))
    return out


def graph_setups(graphs: list[str], points: list[str]) -> list[Setup]:
    out = []
    for g in graphs:
        path = DATA / "pagerank" / f"{GRAPHS[g]}.parquet"
        if not path.exists():
            from benchmarks.pagerank import (
                ensure_graph,  # generates the graph once (networkx)
            )

            ensure_graph({"4k": 20_000, "10k": 50_000, "200k": 1_000_000}[g])
        out.append(Setup(f"PageRank {g} vertices", str(WORKFLOWS / "pagerank_edges.py"),
                         ["--table", f"edges={path}"]))
    for p in points:
        if not Path(POINTS[p]).exists():
            make_points(Path(POINTS[p]))
        out.append(Setup(f"k-means {p} points", str(WORKFLOWS / "kmeans_points.py"),
                         ["--table", f"points={POINTS[p]}"]))
    return out


def make_points(path: Path, n: int = 200_000) -> None:
    """Four Gaussian blobs (seed 2024): what benchmarks/data/kmeans holds."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2024)
    centres = np.array([[2, 2], [8, 3], [5, 8], [9, 9]], float)
    xy = centres[rng.integers(0, 4, n)] + rng.normal(0, 1.0, (n, 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": np.arange(1, n + 1, dtype=np.int64), "x": xy[:, 0], "y": xy[:, 1]}), path)


def run_once(setup: Setup, backend: str, out: str, profile: str | None, timeout: float) -> tuple[float, bool]:
    """Wall seconds of one `musketeer run` process; (seconds, timed_out)."""
    cmd = [sys.executable, "-m", "musketeer", "run", setup.workflow, *setup.args, "--backend", backend,
           "--output", out]
    if profile and backend == "auto":
        cmd += ["--profile", profile]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group we started: python, its JVM / CIEL workers
        proc.communicate()
        return time.perf_counter() - start, True
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{setup.label} on {backend}: exit {proc.returncode}: {err.strip()[-300:]}")
    return seconds, False


def same_result(a: str, b: str) -> str | None:
    """None if the two Parquet results agree (as multisets of rows, floats to
    1e-6 relative), else what differs."""
    import pandas as pd

    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if list(x.columns) != list(y.columns) or len(x) != len(y):
        return f"shape {list(x.columns)} x {len(x)} vs {list(y.columns)} x {len(y)}"
    for c in x.columns:
        u, v = x[c], y[c]
        if pd.api.types.is_numeric_dtype(u) and pd.api.types.is_numeric_dtype(v):
            su, sv = float(u.astype(float).sum()), float(v.astype(float).sum())
            if not math.isclose(su, sv, rel_tol=1e-6, abs_tol=1e-9):
                return f"column {c}: sum {su} vs {sv}"
        elif sorted(map(str, u)) != sorted(map(str, v)):
            return f"column {c}: values differ"
    return None


def measure(setup: Setup, backends: list[str], repeat: int, profile: str | None, factor: float,
            slack: float, tmp: str) -> None:
    order = list(backends)
    for rep in range(repeat):
        for b in order:
            best = min((statistics.median(v) for v in setup.runs.values() if v), default=math.inf)
            timeout = factor * best + slack if best < math.inf else 3600.0
            out = os.path.join(tmp, f"{b}.parquet")
            try:
                seconds, cut = run_once(setup, b, out, profile, timeout)
            except RuntimeError as e:
                print(f"  {e}", file=sys.stderr)
                setup.mismatch[b] = "failed"
                continue
            if cut:
                setup.lower_bound[b] = True
                setup.measured[b] = seconds
                print(f"  {setup.label} {b}: stopped after {seconds:.1f} s", file=sys.stderr)
                continue
            setup.runs.setdefault(b, []).append(seconds)
            if rep == 0 and b != "local" and os.path.exists(os.path.join(tmp, "local.parquet")):
                diff = same_result(os.path.join(tmp, "local.parquet"), out)
                if diff:
                    setup.mismatch[b] = diff
            print(f"  {setup.label} {b}: {seconds:.2f} s", file=sys.stderr)
        order = order[1:] + order[:1]
    for b, v in setup.runs.items():
        if not setup.lower_bound.get(b):
            setup.measured[b] = statistics.median(v)


def judge(setups: list[dict[str, Any]], profile_path: str | None, backends: list[str],
          replay: bool = False) -> list[dict[str, Any]]:
    """Auto's choice per setup (re-planned now) and whether it is within 10%."""
    from musketeer.cost_model.stats import clear_caches

    profile = load_profile(profile_path)
    options = RunOptions()
    # Import and check every engine first: a `--backend B` process pays for
    # loading B too, so only the planning itself is auto's extra time.
    engines_here = available_engines(options, backends)
    for s in setups:
        wf = api.plan_workflow(s["workflow"], **_plan_args(s["args"]))
        clear_caches()  # a fresh process has read no footer yet
        start = time.perf_counter()
        plan, _engines, card = choose_plan(wf, profile, options, backends)
        if not (replay and "planning_seconds" in s):  # a replay keeps the time measured with the run
            s["planning_seconds"] = time.perf_counter() - start
        s["auto"] = " -> ".join(st.backend for st in plan.stages)
        s["estimates"] = {b: round(v, 3) for b, v in
                          per_backend_estimates(wf, card, engines_here, profile).items()}
        exact = {b: t for b, t in s["measured"].items() if not s["lower_bound"].get(b) and not s["mismatch"].get(b)
                 and b != "auto"}
        if not exact:
            s["fastest"], s["auto_seconds"], s["within_10pct"] = "-", None, False
            continue
        s["fastest"] = min(exact, key=exact.get)
        if len(plan.stages) == 1:
            chosen = s["measured"].get(s["auto"])
            chosen = None if chosen is None else chosen + s["planning_seconds"]
            bound = s["lower_bound"].get(s["auto"], False) or bool(s["mismatch"].get(s["auto"]))
        else:
            chosen, bound = s["measured"].get("auto"), s["lower_bound"].get("auto", False)
        s["auto_seconds"] = chosen
        s["within_10pct"] = chosen is not None and not bound and chosen <= 1.10 * exact[s["fastest"]]
    return setups


def _plan_args(args: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"data_dir": None, "tables": {}}
    for flag, value in zip(args[::2], args[1::2]):
        if flag == "--data-dir":
            out["data_dir"] = value
        else:
            name, path = value.split("=", 1)
            out["tables"][name] = path
    return out


def table(setups: list[dict[str, Any]], names: list[str]) -> str:
    cols = names + (["auto"] if any("auto" in s["measured"] for s in setups) else [])  # auto: its own run
    lines = ["| setup | " + " | ".join(f"{n} s" if n != "auto" else "auto's own run s" for n in cols) + " | fastest | auto chose | planning s | "
             "auto s | within 10% |",
             "|---|" + "---:|" * len(cols) + "---|---|---:|---:|---|"]
    for s in setups:
        cells = []
        for n in cols:
            t = s["measured"].get(n)
            cell = "-" if t is None else (f">{t:.1f}" if s["lower_bound"].get(n) else f"{t:.2f}")
            cells.append(cell + (" (differs)" if s["mismatch"].get(n) else ""))
        auto_s = "-" if s["auto_seconds"] is None else f"{s['auto_seconds']:.2f}"
        lines.append(f"| {s['label']} | {' | '.join(cells)} | {s['fastest']} | {s['auto']} | "
                     f"{s['planning_seconds']:.2f} | {auto_s} | {'yes' if s['within_10pct'] else 'no'} |")
    hits = sum(s["within_10pct"] for s in setups)
    lines.append(f"\nauto within 10% of the fastest in {hits}/{len(setups)} setups "
                 f"({100 * hits / max(len(setups), 1):.0f}%)")
    return "\n".join(lines) + "\n"


def _load(values: Any) -> str:
    return "-" if not values else " / ".join(f"{v:.1f}" for v in values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tpch", default=DEFAULT_TPCH, help="SF:queries;SF:queries (default %(default)s)")
    ap.add_argument("--graphs", default="4k,10k,200k", help="PageRank graphs (4k,10k,200k vertices)")
    ap.add_argument("--points", default="240,200k", help="k-means point sets (240, 200k)")
    ap.add_argument("--backends", default=",".join(candidates()))
    ap.add_argument("--no-auto-run", action="store_true", help="do not time `--backend auto` itself")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout-factor", type=float, default=4.0)
    ap.add_argument("--timeout-slack", type=float, default=30.0)
    ap.add_argument("--profile", default=None, help="cost profile auto uses (default: the usual lookup)")
    ap.add_argument("--replay", metavar="JSON", nargs="+", help="re-judge earlier runs' measurements; run nothing")
    ap.add_argument("--fresh-planning", action="store_true",
                    help="with --replay: time planning again (current planner) instead of keeping the stored time")
    ap.add_argument("--out", default=None, help="JSON with every timing (default benchmarks/results/"
                    "auto_choice.json; with --replay: written only if given)")
    args = ap.parse_args()
    if args.replay:
        runs = [json.loads(Path(f).read_text()) for f in args.replay]
        names = list(dict.fromkeys(n for r in runs for n in r["backends"]))
        setups = judge([s for r in runs for s in r["setups"]], args.profile, names, replay=not args.fresh_planning)
        sys.stdout.write(table(setups, names))
        if args.out:
            Path(args.out).write_text(json.dumps({"backends": names, "profile": args.profile, "replayed": args.replay,
                                                  "runs": [{k: v for k, v in r.items() if k != "setups"}
                                                           for r in runs], "setups": setups}, indent=1))
        for r, f in zip(runs, args.replay):
            print(f"{f}: started {r.get('started')}, commit {r.get('commit')}, load before "
                  f"{_load(r.get('load_before'))}, after {_load(r.get('load_after'))}")
        return 0
    engines = available_engines(RunOptions(), args.backends.split(","))
    names = list(engines)
    print(f"backends available: {', '.join(names)}", file=sys.stderr)
    setups = tpch_setups(args.tpch) + graph_setups([g for g in args.graphs.split(",") if g],
                                                   [p for p in args.points.split(",") if p])
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="musketeer-auto-") as tmp:
        for s in setups:
            measure(s, names + ([] if args.no_auto_run else ["auto"]), args.repeat, args.profile,
                    args.timeout_factor, args.timeout_slack, tmp)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=False,
                            text=True).stdout.strip()
    out = Path(args.out or ROOT / "benchmarks" / "results" / "auto_choice.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"backends": names, "profile": args.profile, "started": started, "commit": commit,
              "load_before": load_before, "load_after": os.getloadavg(), "repeat": args.repeat,
              "setups": [{**vars(s)} for s in setups]}
    out.write_text(json.dumps(record, indent=1))  # measurements first: judging cannot lose them
    record["setups"] = judge(record["setups"], args.profile, names)
    out.write_text(json.dumps(record, indent=1))
    sys.stdout.write(table(record["setups"], names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
