"""TPC-H correctness: the 22 standard queries through `musketeer run --backend
local` over SF 0.01 data must return DuckDB's rows on the same files.

Data and query texts come from DuckDB's tpch extension at test time (see
tests/tpch.py); nothing here hard-codes an answer.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests import tpch

REPO = Path(__file__).resolve().parent.parent
QUERIES = list(range(1, 23))
COMPILE_QUERIES = [1, 3, 13, 21]  # standalone-program check: a quick, varied handful
CLI_TIMEOUT = 120  # per CLI call at SF 0.01 (seconds); a query should take ~1 s
SF1_TIMEOUT = 900


def _musketeer(*args: str, cwd: Path, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, "-m", "musketeer", *args],
            cwd=cwd, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"musketeer {' '.join(args[:2])} did not finish within {timeout:g} s", pytrace=False)


def _check_ok(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        pytest.fail(
            f"{what} exited with {proc.returncode}\n--- stderr ---\n{proc.stderr[-4000:]}"
            f"\n--- stdout ---\n{proc.stdout[-2000:]}",
            pytrace=False,
        )


def _compare(out: Path, expected, sql: str) -> None:
    actual = pq.read_table(out)
    try:
        tpch.assert_query_result(actual, expected, sql)
        failure = None
    except AssertionError as e:
        failure = str(e)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


# --------------------------------------------------------------------------- the 22 queries

@pytest.mark.parametrize("n", QUERIES, ids=[f"q{n:02d}" for n in QUERIES])
def test_tpch_query_local(n, tpch_queries, tpch_data_dir, tpch_query_file, tpch_expected, tmp_path):
    out = tmp_path / "out.parquet"
    proc = _musketeer(
        "run", str(tpch_query_file(n)), "--backend", "local",
        "--data-dir", str(tpch_data_dir), "--output", str(out), cwd=REPO,
    )
    _check_ok(proc, f"musketeer run q{n:02d}.sql")
    assert out.exists(), f"musketeer run exited 0 but wrote no {out}"
    _compare(out, tpch_expected(n), tpch_queries[n])


@pytest.mark.parametrize("n", COMPILE_QUERIES, ids=[f"q{n:02d}" for n in COMPILE_QUERIES])
def test_tpch_compiled_program_runs_standalone(n, tpch_queries, tpch_data_dir, tpch_query_file, tpch_expected, tmp_path):
    prog = tmp_path / f"q{n:02d}.py"
    proc = _musketeer(
        "compile", str(tpch_query_file(n)), "--backend", "local",
        "--data-dir", str(tpch_data_dir), "--output", str(prog), cwd=REPO,
    )
    _check_ok(proc, f"musketeer compile q{n:02d}.sql")
    assert prog.exists(), f"musketeer compile exited 0 but wrote no {prog}"
    out = tmp_path / "x.parquet"
    # Run from an unrelated directory with the plain interpreter: the program
    # must not need the repository or the CLI to run.
    run = subprocess.run(
        [sys.executable, str(prog), "--output", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    _check_ok(run, f"python {prog.name} --output x.parquet")
    _compare(out, tpch_expected(n), tpch_queries[n])


@pytest.mark.slow
@pytest.mark.parametrize("n", QUERIES, ids=[f"q{n:02d}" for n in QUERIES])
def test_tpch_sf1_query_local(n, tpch_queries, tmp_path):
    """SF 1 (data cached in benchmarks/data/sf1, as the benchmark uses it)."""
    data = tpch.ensure_data(1.0, REPO / "benchmarks" / "data")
    qfile = tmp_path / f"q{n:02d}.sql"
    qfile.write_text(tpch_queries[n])
    out = tmp_path / "out.parquet"
    proc = _musketeer("run", str(qfile), "--backend", "local", "--data-dir", str(data), "--output", str(out),
                      cwd=REPO, timeout=SF1_TIMEOUT)
    _check_ok(proc, f"musketeer run q{n:02d}.sql (SF 1)")
    _compare(out, tpch.duckdb_answer(tpch_queries[n], data), tpch_queries[n])


# --------------------------------------------------------------------------- the harness itself

def test_queries_are_the_22_standard_texts(tpch_queries):
    assert sorted(tpch_queries) == QUERIES
    assert "l_returnflag" in tpch_queries[1] and "sum(l_quantity)" in tpch_queries[18]


def test_generated_data_has_the_8_tables(tpch_data_dir):
    paths = tpch.table_paths(tpch_data_dir)
    assert set(paths) == set(tpch.TABLES)
    assert pq.read_metadata(paths["lineitem"]).num_rows > 50_000  # SF 0.01: ~60k rows


def test_oracle_reads_the_exported_files(tpch_data_dir, tmp_path):
    # The oracle must see the files, not DuckDB-internal tables: a copy of the
    # data with one region removed changes the answer.
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tpch_data_dir, data)
    region = pq.read_table(data / "region.parquet")
    pq.write_table(region.filter(pc.not_equal(region["r_name"], "ASIA")), data / "region.parquet")
    sql = "SELECT count(*) AS n FROM region"
    assert tpch.duckdb_answer(sql, tpch_data_dir)["n"].iloc[0] == 5
    assert tpch.duckdb_answer(sql, data)["n"].iloc[0] == 4


def _df(rows, columns=("k", "name", "x")):
    return pd.DataFrame(rows, columns=list(columns))


BASE = [(1, "a", 1.5), (2, "b", 2.5), (2, "c", 3.25), (3, "d", None)]


def _fails(actual, expected, order_by=None, **kw) -> str:
    with pytest.raises(AssertionError) as info:
        tpch.assert_same_rows(actual, expected, order_by, **kw)
    return str(info.value)


def test_same_rows_accepts_identical_and_float_noise():
    tpch.assert_same_rows(_df(BASE), _df(BASE))
    noisy = [(k, s, None if x is None else x * (1 + 3e-7)) for k, s, x in BASE]
    tpch.assert_same_rows(_df(noisy), _df(BASE), [(0, True)])
    # near zero: a tiny absolute difference is fine
    tpch.assert_same_rows(_df([(1, "a", 1e-12)]), _df([(1, "a", 0.0)]))


def test_same_rows_catches_a_wrong_value():
    wrong = list(BASE)
    wrong[1] = (2, "b", 2.5 * (1 + 1e-5))
    msg = _fails(_df(wrong), _df(BASE), [(0, True)])
    assert "row 1" in msg and "2.5" in msg
    assert "missing" in _fails(_df(wrong), _df(BASE))
    wrong_str = [(1, "A", 1.5)] + BASE[1:]
    _fails(_df(wrong_str), _df(BASE))


def test_same_rows_catches_missing_and_extra_rows():
    msg = _fails(_df(BASE[:-1]), _df(BASE))
    assert "actual 3 rows, expected 4" in msg and "'d'" in msg
    msg = _fails(_df(BASE[:-1]), _df(BASE), [(0, True)])
    assert "row count differs" in msg
    # multiset: duplicates count
    _fails(_df(BASE + [BASE[0]]), _df(BASE + [BASE[1]]))


def test_same_rows_checks_order_except_within_ties():
    # Unordered comparison accepts any permutation.
    tpch.assert_same_rows(_df(BASE[::-1]), _df(BASE))
    # Ordered: wrong order is caught...
    msg = _fails(_df(BASE[::-1]), _df(BASE), [(0, True)])
    assert "rows differ at row 0" in msg and "ORDER BY" in msg
    # ...but rows tying on the keys (k == 2) may come in any order.
    swapped = [BASE[0], BASE[2], BASE[1], BASE[3]]
    tpch.assert_same_rows(_df(swapped), _df(BASE), [(0, True)])
    # Not if the second key breaks the tie.
    _fails(_df(swapped), _df(BASE), [(0, True), (1, True)])
    # Float keys tie within tolerance.
    exp = [(1, "a", 10.0), (2, "b", 10.0 * (1 + 1e-9)), (3, "c", 5.0)]
    act = [exp[1], exp[0], exp[2]]
    tpch.assert_same_rows(_df(act), _df(exp), [(2, False)])


def test_same_rows_limit_cut_only_fixes_the_keys_of_the_last_tie_group():
    exp = [(5, "a", 1.0), (4, "b", 2.0), (4, "c", 3.0)]
    act = [(5, "a", 1.0), (4, "b", 2.0), (4, "z", 9.0)]  # another row with key 4 made the cut
    tpch.assert_same_rows(_df(act), _df(exp), [(0, False)], limit=3)
    _fails(_df(act), _df(exp), [(0, False)])  # without the LIMIT it is a wrong row
    _fails(_df([(5, "a", 1.0), (4, "b", 2.0), (3, "z", 9.0)]), _df(exp), [(0, False)], limit=3)


def test_same_rows_nulls_names_and_types():
    nulls = _df([(1, None, None)])
    tpch.assert_same_rows(nulls, nulls)
    _fails(_df([(1, "a", None)]), _df([(1, "a", 0.0)]))
    # names: case-insensitive, count and names checked, per-column opt-out
    tpch.assert_same_rows(_df(BASE, ("K", "NAME", "X")), _df(BASE))
    assert "column names" in _fails(_df(BASE, ("k", "nm", "x")), _df(BASE))
    tpch.assert_same_rows(_df(BASE, ("k", "name", "sum_x")), _df(BASE), check_names=[True, True, False])
    assert "column count" in _fails(_df([(1, "a")], ("k", "name")), _df([(1, "a", 1.0)]))
    # decimals (oracle) vs float64 (engine); date vs timestamp at midnight; ints exactly
    import decimal

    exp = pa.table({"d": pa.array([decimal.Decimal("1.10")], pa.decimal128(15, 2)),
                    "day": pa.array([dt.date(1995, 3, 15)], pa.date32()),
                    "n": pa.array([7], pa.int64())})
    act = pd.DataFrame({"d": [1.1], "day": [pd.Timestamp("1995-03-15")], "n": [7]})
    tpch.assert_same_rows(act, exp)
    _fails(pd.DataFrame({"d": [1.1], "day": [pd.Timestamp("1995-03-16")], "n": [7]}), exp)
    _fails(pd.DataFrame({"d": [1.1], "day": [pd.Timestamp("1995-03-15")], "n": [8]}), exp)
    _fails(pd.DataFrame({"d": ["1.1"], "day": [pd.Timestamp("1995-03-15")], "n": [7]}), exp)


def test_query_shape_order_keys_and_limits(tpch_queries):
    shape = tpch.query_shape(tpch_queries[13])  # ORDER BY custdist DESC, c_count DESC
    assert shape.order_by == [(1, False), (0, False)] and shape.limit is None
    shape = tpch.query_shape(tpch_queries[3])  # ORDER BY revenue DESC, o_orderdate LIMIT 10
    assert shape.order_by == [(1, False), (2, True)] and shape.limit == 10
    assert tpch.query_shape(tpch_queries[6]).order_by is None
    assert tpch.query_shape(tpch_queries[18]).names_defined == [True] * 5 + [False]
    assert tpch.query_shape("SELECT a, b FROM t ORDER BY 2 DESC").order_by == [(1, False)]
    assert tpch.query_shape("SELECT a + 1, b FROM t ORDER BY a + 1").order_by == [(0, True)]
    for n, sql in tpch_queries.items():  # every standard query is understood
        tpch.query_shape(sql)


def test_oracle_agrees_with_itself_on_all_queries(tpch_queries, tpch_expected):
    for n, sql in tpch_queries.items():
        tpch.assert_query_result(tpch_expected(n), tpch_expected(n), sql)
