"""Secure-engine gaps found by the conformance run (issue #7 follow-ups):
DISTINCT (public in the clear, secret sort-based), and string/date columns
that would enter MPC, which the split must refuse at compile time (naming
the operator and the column) instead of failing at run time."""

from __future__ import annotations

import os

import pytest

from musketeer.mpc.config import load_config
from musketeer.mpc.examples.data import SCENARIOS, write_scenario
from musketeer.mpc.launch import free_ports, run_all
from tests.mpc_helpers import cleartext_answer, same_answer
from musketeer.mpc.split import LeakRefused
from musketeer.mpc_cli import plan_query
from musketeer.cli import main

ALL_DIAGS = ("SELECT diag FROM visits_a UNION ALL SELECT diag FROM visits_b UNION ALL "
             "SELECT diag FROM visits_c")


def _patients(tmp_path, diag_type: str = "int64", diag_visible: str = "", rows: int = 10) -> str:
    """The patients scenario, optionally with `diag` of another type
    (values are only declared: planning reads no file) or visible to some."""
    path = write_scenario("patients", str(tmp_path / "patients"), rows, free_ports(3))
    text = open(path).read().replace('diag = "int64"', f'diag = "{diag_type}"')
    if diag_visible:
        text = text.replace('{ pid = ["*"] }', f'{{ pid = ["*"], diag = {diag_visible} }}')
    with open(path, "w") as f:
        f.write(text)
    return path


def _run_and_check(path: str, sql: str, mpc_only: bool = False) -> None:
    import io

    import pandas as pd

    query = os.path.join(os.path.dirname(path), "q.sql")
    with open(query, "w") as f:
        f.write(sql)
    parties = list(SCENARIOS["patients"].parties)
    runs = run_all(query, path, parties, mpc_only=mpc_only, timeout=300)
    for r in runs.values():
        assert r.returncode == 0, r.stderr.strip().splitlines()[-1:]
    config = load_config(path)
    want = cleartext_answer(query, config)
    got = pd.read_csv(io.StringIO(runs[config.recipients[0]].stdout), sep=r"\s+")
    assert same_answer(got, want), (got, want)
    return want


DISTINCT_DIAGS = {
    "distinct": ("Distinct", f"SELECT COUNT(*) AS n FROM (SELECT DISTINCT diag FROM ({ALL_DIAGS}) t) u"),
    "union": ("Union", "SELECT COUNT(*) AS n FROM (SELECT diag FROM visits_a UNION SELECT diag FROM visits_b "
                       "UNION SELECT diag FROM visits_c) t"),
}


@pytest.mark.parametrize("form", sorted(DISTINCT_DIAGS))
@pytest.mark.parametrize("mpc_only", [False, True], ids=["split", "mpc_only"])
def test_secret_distinct_is_oblivious_and_exact(tmp_path, mpc_only, form):
    """Private diag codes of three hospitals: how many distinct codes in
    all (only the count is revealed). The DISTINCT (or UNION's duplicate
    removal) runs under MPC, sort-based, in the split and in the
    all-oblivious baseline."""
    path = _patients(tmp_path, rows=12)
    opname, sql = DISTINCT_DIAGS[form]
    plan = plan_query(sql, load_config(path), mpc_only=mpc_only)
    steps = [s for s in plan.secure if s.op.opname == opname and (opname != "Union" or s.op.distinct)]
    assert steps and all(s.mode == "oblivious" for s in steps)
    assert all(leak.kind in ("size", "nulls", "output") for p in plan.parties for leak in plan.leakage(p))
    want = _run_and_check(path, sql, mpc_only)
    assert 1 <= int(want["n"].iloc[0]) <= 10  # diag codes are 1..10: duplicates were removed


def test_public_distinct_runs_in_the_clear(tmp_path):
    """pid is public: DISTINCT pid (under a cross join, so it stays in the
    secure stage rather than being pushed up) is computed in the clear."""
    path = _patients(tmp_path, rows=8)
    sql = ("SELECT COUNT(*) AS n FROM (SELECT DISTINCT pid FROM (SELECT pid FROM visits_a UNION ALL "
           "SELECT pid FROM visits_b) t) u CROSS JOIN (SELECT pid AS c FROM visits_c) v")
    plan = plan_query(sql, load_config(path))
    step = next(s for s in plan.secure if s.op.opname == "Distinct")
    assert step.mode == "public"
    _run_and_check(path, sql)


@pytest.mark.parametrize("diag_type", ["string", "date"])
def test_secure_union_of_held_non_numeric_columns_is_refused(tmp_path, diag_type):
    """diag is held by each hospital and visible to the recipient: the
    UNION ALL of two parties' diag columns would have to secret-share it."""
    path = _patients(tmp_path, diag_type, '["hosp_a"]')
    sql = ("SELECT diag, COUNT(*) AS n FROM (SELECT pid, diag FROM visits_a UNION ALL "
           "SELECT pid, diag FROM visits_b) t GROUP BY diag")
    with pytest.raises(LeakRefused, match=rf"^refused: Union %\d+ would secret-share {diag_type} column 'diag'"):
        plan_query(sql, load_config(path))


def test_secret_distinct_over_a_string_column_is_refused(tmp_path):
    """hosp_b's diag, after a public join on pid, is held by hosp_b but the
    rows are joint: a secure DISTINCT over it would have to share it."""
    path = _patients(tmp_path, "string")
    sql = ("SELECT COUNT(*) AS n FROM (SELECT DISTINCT b.diag FROM visits_a a JOIN visits_b b "
           "ON a.pid = b.pid) u")
    with pytest.raises(LeakRefused, match=r"Distinct %\d+ needs string key 'diag' in the clear"):
        plan_query(sql, load_config(path))


def test_mpc_only_refuses_date_columns(tmp_path):
    path = _patients(tmp_path, "date")
    with pytest.raises(LeakRefused, match=r"--mpc-only would secret-share date column 'diag'"):
        plan_query("SELECT diag, COUNT(*) AS n FROM visits_a GROUP BY diag", load_config(path), mpc_only=True)


def test_refusal_is_one_line_exit_2_on_the_cli(tmp_path, capsys):
    path = _patients(tmp_path, "string", '["hosp_a"]')
    query = tmp_path / "q.sql"
    query.write_text("SELECT diag FROM (SELECT diag FROM visits_a UNION ALL SELECT diag FROM visits_b) t")
    code = main(["mpc", "explain", str(query), "--parties", path])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "would secret-share string column 'diag'" in err
    assert "Traceback" not in err
