"""Conclave split vs all-MPC (--mpc-only): HHI and the credit query at
growing rows per party, 3 parties as 3 processes on 127.0.0.1.

    .venv/bin/python benchmarks/mpc_split.py --rows 100 200 400

Prints one line per run: scenario, rows, mode, wall seconds, local and
secure seconds at the recipient, and whether the answer matched cleartext.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mpc.demo import run_scenario  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--scenarios", nargs="+", default=["hhi", "credit"])
    ap.add_argument("--skip-mpc-only-above", type=int, default=10**9,
                    help="skip the all-MPC baseline above this many rows per party")
    args = ap.parse_args()
    print(f"{'scenario':9} {'rows':>6} {'mode':9} {'wall_s':>8} {'local_s':>8} {'secure_s':>9} ok")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios:
            for rows in args.rows:
                for mpc_only in (False, True):
                    if mpc_only and rows > args.skip_mpc_only_above:
                        continue
                    r = run_scenario(name, rows, tmp, mpc_only=mpc_only)
                    if "error" in r:
                        print(f"{name:9} {rows:>6} {'mpc-only' if mpc_only else 'split':9} failed: {r['error']}")
                        continue
                    print(f"{name:9} {rows:>6} {'mpc-only' if mpc_only else 'split':9} {r['wall']:8.2f} "
                          f"{r['local']:8.2f} {r['secure']:9.2f} {r['ok']}", flush=True)


if __name__ == "__main__":
    main()
