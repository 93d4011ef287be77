"""A/B of one IR pass on dask: a TPC-H query's generated program with and
without the pass, next to the hand-written version, in one process.

Tells what a plan rewrite is worth on the engine, apart from the code
generation: both programs come from the same compiler, the only difference
is the pass list. Interleaved, median of --repeat, after a warm-up run each
checked against DuckDB (benchmarks/_harness.py).

    flock /tmp/musketeer-bench.lock .venv/bin/python benchmarks/dask_pass_ab.py --sf 1 --repeat 7 \\
        --ab 18:semi_join_pushdown,17:magic_sets
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

import _harness as H

import musketeer.ir.passes as P


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--ab", default="18:semi_join_pushdown,17:magic_sets",
                        help="QUERY:PASS pairs, comma-separated")
    args = parser.parse_args(argv)
    data_dir = H.tpch.ensure_data(args.sf, H.REPO / "benchmarks" / "data")
    texts = H.tpch.queries()
    full = P.optimize.__defaults__
    assert full is not None
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.ab.split(","):
            query, _, name = item.partition(":")
            n, dropped = int(query), getattr(P, name)
            variants: dict[str, H.Runner] = {}
            for label, passes in (("with", full[0]), ("without", tuple(p for p in full[0] if p is not dropped))):
                P.optimize.__defaults__ = (passes,)  # what compile_workflow's optimize() runs
                try:
                    workdir = Path(tmp) / f"{label}_{n}"
                    workdir.mkdir()
                    module = H.compile_query(n, texts[n], "dask", data_dir, workdir)[0]
                finally:
                    P.optimize.__defaults__ = full
                variants[f"{label} {name}"] = lambda m=module: m.run()["result"]
            hand = importlib.import_module(f"benchmarks.handwritten.dask_q{n:02d}")
            variants["hand-written"] = lambda hand=hand: hand.query(str(data_dir))
            checks = H.check_warm_up(variants, texts[n], data_dir, True)
            wall, cpu = H.interleaved(variants, args.repeat)
            wall_median, cpu_median = H.medians(wall), H.medians(cpu)
            print(f"Q{n}: " + ", ".join(f"{k} {wall_median[k]:.2f} s ({cpu_median[k]:.2f} s CPU)" for k in variants)
                  + f"; {H.check_text(checks)}")
            print("  wall runs: " + "; ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in wall.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
