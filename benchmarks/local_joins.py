"""The local engine's equi-join alone, this commit against a baseline commit.

Whole TPC-H queries spend most of their time reading parquet, and on a
shared machine their run-to-run noise hides a change to one operator. This
benchmark times only `join_frames` (the runtime function every local join,
and every dask/ciel join of partitions, calls) on synthetic frames of
pyarrow-backed columns, side by side in one process: the runtime of this
commit and the runtime the `--baseline` commit generates (both taken from
the program each compiles for TPC-H Q3, see tpch_sf1.baseline_programs),
interleaved, median of --repeat, wall and CPU time (all threads).

    .venv/bin/python benchmarks/local_joins.py --baseline 582522a --repeat 5
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.tpch_sf1 import baseline_programs, compile_query, ensure_data, write_query_files  # noqa: E402
from tests import tpch  # noqa: E402

#: (name, left rows, left key range, right rows, right key range, join kind)
CASES = [
    ("lopsided 6M x 2k", 6_000_000, 200_000, 2_000, 200_000, "inner"),
    ("1.5M x 150k", 1_500_000, 150_000, 150_000, 150_000, "inner"),
    ("1.5M x 150k left", 1_500_000, 200_000, 150_000, 150_000, "left"),
    ("1.5M x 1.5M", 1_500_000, 1_500_000, 1_500_000, 1_500_000, "inner"),
]


def runtime(text: str) -> dict:
    """The namespace of a generated program (its inlined runtime library)."""
    ns: dict = {"__name__": "musketeer_bench_runtime"}
    exec(compile(text, "<program>", "exec"), ns)
    return ns


def frames(ns: dict, rows: int, keys: int, prefix: str, rng: np.random.Generator):
    """A relation as the engine holds it: a key with ~1% NULLs, three double columns."""
    key = rng.integers(0, keys, rows)
    table = pa.table({f"{prefix}_key": pa.array(key, mask=rng.random(rows) < 0.01),
                      **{f"{prefix}_v{i}": rng.random(rows) for i in range(3)}})
    return ns["to_frame"](table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", metavar="REV", required=True, help="the commit to compare with")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data-root", type=Path, default=REPO / "benchmarks" / "data",
                    help="TPC-H SF 0.01 data (only compiled against) is cached here")
    args = ap.parse_args(argv)
    data = ensure_data(0.01, args.data_root)
    qdir = write_query_files(args.data_root, {3: tpch.queries()[3]})
    current = runtime(compile_query(qdir / "q03.sql", data)[0])
    with tempfile.TemporaryDirectory(prefix="musketeer-baseline-") as work:
        base = runtime(baseline_programs(args.baseline, [qdir / "q03.sql"], data, Path(work))["q03"])
    rng = np.random.default_rng(7)
    print(f"join_frames: baseline = {args.baseline}, this = the working tree; median of {args.repeat}, "
          "CPU = all threads\n")
    print("| case | output rows | baseline s | this s | speedup | baseline CPU s | this CPU s | CPU speedup |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, lrows, lkeys, rrows, rkeys, how in CASES:
        left, right = frames(current, lrows, lkeys, "l", rng), frames(current, rrows, rkeys, "r", rng)
        times: dict[str, list[tuple[float, float]]] = {"baseline": [], "this": []}
        sizes = set()
        for rep in range(args.repeat):
            order = (("baseline", base), ("this", current))
            for label, ns in order if rep % 2 == 0 else order[::-1]:
                gc.collect()
                t0, c0 = time.perf_counter(), time.process_time()
                out = ns["join_frames"](left, right, how, ["l_key"], ["r_key"])
                times[label].append((time.perf_counter() - t0, time.process_time() - c0))
                sizes.add(len(out))
                del out
        assert len(sizes) == 1, f"{name}: the two runtimes disagree on the row count: {sizes}"
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
        (bw, bc), (tw, tc) = med["baseline"], med["this"]
        print(f"| {name} ({how}) | {sizes.pop():,} | {bw:.3f} | {tw:.3f} | {bw / tw:.2f} | {bc:.3f} | {tc:.3f} | "
              f"{bc / tc:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
