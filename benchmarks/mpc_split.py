"""Conclave split vs the all-oblivious `--mpc-only` baseline: HHI and the
credit query at growing rows per party, 3 parties as 3 OS processes over TCP
on 127.0.0.1 (each exactly `musketeer mpc run`). Every run is checked
against the cleartext answer (all tables in one place, DuckDB), whose
time is reported too.

    flock /tmp/musketeer-bench.lock .venv/bin/python benchmarks/mpc_split.py \\
        --scenario hhi --rows 1000 10000 --mpc-only-max 10000
    flock /tmp/musketeer-bench.lock .venv/bin/python benchmarks/mpc_split.py \
        --scenario hhi --rows 100000 1000000 10000000 --modes split --fixed 96:48

Per run: wall (slowest party process, start to exit: interpreter start,
imports, local stage, connect, secure stage, shutdown), local (the largest
party's cleartext stage), secure (the recipient's time inside the MPC
session), cleartext (the whole query in the clear, one process). An
`--mpc-only` run is killed after `--cap` seconds (default 600) and no larger
size is tried after a timeout. Results are appended to `--out` (JSON).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pandas as pd  # noqa: E402

from musketeer.mpc.config import load_config  # noqa: E402
from musketeer.mpc.examples.data import SCENARIOS, write_scenario  # noqa: E402
from musketeer.mpc.launch import free_ports, launch, metrics, wait_all  # noqa: E402
from musketeer.mpc.demo import cleartext_answer, same_answer  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "mpc_split.json")


def _uptime() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_once(name: str, directory: str, mpc_only: bool, cap: float, want: pd.DataFrame) -> dict:
    config_path = os.path.join(directory, "parties.toml")
    config = load_config(config_path)
    # fresh ports per run (a killed run may leave sockets in TIME_WAIT)
    text = open(config_path).read()
    for p, port in zip(config.parties, free_ports(len(config.parties))):
        text = text.replace(f"port = {p.port}\n", f"port = {port}\n")
    with open(config_path, "w") as f:
        f.write(text)
    query = os.path.join(directory, "query.sql")
    parties = list(SCENARIOS[name].parties)
    start = time.perf_counter()
    try:
        runs = wait_all(launch(query, config_path, parties, mpc_only=mpc_only, extra=["--timeout", "300"]),
                        timeout=cap)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "wall_s": round(time.perf_counter() - start, 2)}
    bad = [r for r in runs.values() if r.returncode != 0]
    if bad:
        return {"status": "failed", "error": bad[0].stderr.strip().splitlines()[-1:]}
    rec = config.recipients[0]
    got = pd.read_csv(io.StringIO(runs[rec].stdout), sep=r"\s+")
    per = {p: metrics(r.stderr) for p, r in runs.items()}
    return {"status": "ok", "matches_cleartext": bool(same_answer(got, want)),
            "wall_s": round(max(r.seconds for r in runs.values()), 2),
            "local_s": round(max(m.get("local_seconds", 0.0) for m in per.values()), 3),
            "secure_s": round(per[rec].get("secure_seconds", 0.0), 3),
            "answer": got.to_dict(orient="list")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["hhi", "credit"], required=True)
    ap.add_argument("--rows", type=int, nargs="+", required=True, help="rows per party")
    ap.add_argument("--mpc-only-max", type=int, default=10**9, help="largest size to try --mpc-only at")
    ap.add_argument("--cap", type=float, default=600.0, help="seconds before an --mpc-only run is killed")
    ap.add_argument("--modes", nargs="+", default=["split", "mpc-only"])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--fixed", default="64:32",
                    help="secure fixed-point BITS:FRACTION for every party (MUSKETEER_MPC_FIXED); 96:48 for HHI "
                         "at 1e6+ rows per party, where 64:32 overflows")
    args = ap.parse_args()
    os.environ["MUSKETEER_MPC_FIXED"] = args.fixed  # the party processes inherit it
    results = []
    if os.path.exists(args.out):
        with open(args.out) as f:
            results = json.load(f)
    mpc_only_dead = False
    print(f"{'scenario':8} {'rows':>9} {'mode':9} {'wall_s':>8} {'local_s':>8} {'secure_s':>9} "
          f"{'clear_s':>8} status", flush=True)
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="mpc-bench-") as tmp:
            t = time.perf_counter()
            fmt = "parquet" if rows >= 100_000 else "csv"
            write_scenario(args.scenario, tmp, rows, free_ports(3), fmt=fmt)
            gen = time.perf_counter() - t
            t = time.perf_counter()
            with open(os.path.join(tmp, "query.sql")) as f:
                want = cleartext_answer(f.read(), load_config(os.path.join(tmp, "parties.toml")))
            clear = time.perf_counter() - t
            for mode in args.modes:
                only = mode == "mpc-only"
                if only and (rows > args.mpc_only_max or mpc_only_dead):
                    continue
                before = _uptime()
                r = run_once(args.scenario, tmp, only, args.cap if only else 3600.0, want)
                r.update({"scenario": args.scenario, "rows_per_party": rows, "mode": mode,
                          "fixed_point": args.fixed, "cleartext_s": round(clear, 3), "datagen_s": round(gen, 2), "format": fmt,
                          "load_before": before, "load_after": _uptime(),
                          "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
                mpc_only_dead = mpc_only_dead or (only and r["status"] == "timeout")
                print(f"{args.scenario:8} {rows:>9} {mode:9} {r.get('wall_s', 0):8.2f} {r.get('local_s', 0):8.2f} "
                      f"{r.get('secure_s', 0):9.2f} {clear:8.2f} {r['status']}"
                      f"{'' if r['status'] != 'ok' else ' matches' if r['matches_cleartext'] else ' DIFFERS'}",
                      flush=True)
                results.append(r)
                os.makedirs(os.path.dirname(args.out), exist_ok=True)
                with open(args.out, "w") as f:
                    json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
