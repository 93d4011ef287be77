"""Random multi-party queries (tests/mpc_fuzz.py) against DuckDB on the
union of the parties' data: each query is right, or refused at explain
time with one line; never a wrong answer, never a mid-protocol failure.

Quick run here (one random config, a few queries); the slow suite runs
more (`MUSKETEER_MPC_FUZZ_SESSIONS` configs x `MUSKETEER_MPC_FUZZ_QUERIES`
queries; benchmarks/README.md reports the long run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.mpc_fuzz import Outcome, session


def _check(out: Outcome) -> None:
    assert not out.failure, f"seed {out.seed}: a session failed mid-protocol: {out.failure}"
    assert not out.wrong, f"seed {out.seed}: wrong answers: {out.wrong[:3]}"
    for sql, reason in out.refused:
        assert reason and "\n" not in reason, (sql, reason)


def test_random_queries_quick(tmp_path: Path) -> None:
    out = session(11, 8, tmp_path)
    _check(out)
    assert out.ran >= 1, out.refused  # the seed exercises the secure engine, not only refusals


@pytest.mark.slow
def test_random_queries_long(tmp_path: Path) -> None:
    sessions = int(os.environ.get("MUSKETEER_MPC_FUZZ_SESSIONS", "4"))
    queries = int(os.environ.get("MUSKETEER_MPC_FUZZ_QUERIES", "25"))
    totals = {"queries": 0, "ran": 0, "refused": 0, "wrong": 0, "failed_sessions": 0, "secure_s": 0.0}
    problems = []
    for i in range(sessions):
        out = session(1000 + i, queries, tmp_path / f"s{i}")
        totals["queries"] += queries
        totals["ran"] += out.ran
        totals["refused"] += len(out.refused)
        totals["wrong"] += len(out.wrong)
        totals["failed_sessions"] += bool(out.failure)
        totals["secure_s"] += out.seconds
        if out.failure or out.wrong:
            problems.append(out)
    print("mpc generator:", totals)
    for out in problems:
        _check(out)
