"""The compiled-program cache (musketeer/cache.py): a re-run of an unchanged
workflow over inputs with unchanged schemas reuses its program, and its
answers stay DuckDB's on the original SQL; an edit to the workflow or to an
input's schema (or a new file in the data directory) compiles again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musketeer import api
from tests import tpch

SQL = "SELECT k, sum(v) AS total, count(*) AS n FROM t WHERE v > 1 GROUP BY k ORDER BY k\n"


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSKETEER_CACHE", "on")
    monkeypatch.setenv("MUSKETEER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    write(tmp_path, [1, 1, 2, None], [1.5, 2.5, 3.0, 4.0])
    (tmp_path / "q.sql").write_text(SQL)
    return tmp_path


def write(root: Path, keys: list, values: list, value_type: pa.DataType = pa.float64()) -> None:
    pq.write_table(pa.table({"k": pa.array(keys, pa.int64()), "v": pa.array(values, value_type)}),
                   root / "data" / "t.parquet")


def run(root: Path, backend: str = "duckdb") -> api.Execution:
    execution = api.execute(root / "q.sql", backend=backend, data_dir=str(root / "data"))
    expected = duckdb.connect().execute(
        (root / "q.sql").read_text().replace("FROM t", f"FROM read_parquet('{root / 'data' / 't.parquet'}')")
    ).to_arrow_table()
    tpch.assert_query_result(execution.result.outputs["result"], tpch.arrow_to_pandas(expected),
                             (root / "q.sql").read_text())
    return execution


@pytest.mark.parametrize("backend", ["duckdb", "local", "auto"])
def test_a_rerun_reuses_the_program(work: Path, backend: str) -> None:
    first = run(work, backend)
    assert "cache" not in first.result.metrics and "parse_seconds" in first.result.metrics
    assert len(list((work / "cache").glob("*.json"))) == 1
    again = run(work, backend)
    assert again.result.metrics["cache"] == "hit" and "parse_seconds" not in again.result.metrics


def test_new_rows_with_the_same_schema_keep_the_program(work: Path) -> None:
    run(work)
    write(work, [5, 5, 6], [10.0, 20.0, 0.5])
    again = run(work)  # the answer is the new data's (checked against DuckDB in run)
    assert again.result.metrics["cache"] == "hit"


def test_an_edited_workflow_compiles_again(work: Path) -> None:
    run(work)
    (work / "q.sql").write_text(SQL.replace("v > 1", "v > 2"))
    again = run(work)
    assert "cache" not in again.result.metrics
    assert len(list((work / "cache").glob("*.json"))) == 2


def test_a_changed_schema_compiles_again(work: Path) -> None:
    run(work)
    write(work, [1, 2], [3, 4], pa.int64())  # v: double -> int64
    again = run(work)
    assert "cache" not in again.result.metrics
    assert again.result.outputs["result"]["total"].dtype.pyarrow_dtype == pa.int64()


def test_a_new_file_in_the_data_directory_compiles_again(work: Path) -> None:
    run(work)
    pq.write_table(pa.table({"x": [1]}), work / "data" / "other.parquet")
    assert "cache" not in run(work).result.metrics


def test_python_workflows_and_a_disabled_cache_store_nothing(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (work / "w.py").write_text("from musketeer import read\nworkflow = read('data/t.parquet').where(lambda r: r.v > 1)\n")
    api.execute(work / "w.py", backend="duckdb")
    assert not (work / "cache").exists()
    monkeypatch.setenv("MUSKETEER_CACHE", "off")
    run(work)
    assert not (work / "cache").exists()


def test_the_cli_reuses_the_program_across_processes(work: Path) -> None:
    env = {**os.environ}
    args = [sys.executable, "-m", "musketeer", "run", "q.sql", "--data-dir", "data", "--backend", "duckdb",
            "--metrics", "--output", "r.parquet"]
    first = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "cache: hit" in second.stderr, second.stderr
    assert pq.read_table(work / "r.parquet").num_rows == 3  # keys 1, 2 and NULL


def test_changed_musketeer_code_compiles_again(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fix to a code generator must not be hidden by a program the old code
    cached: `__version__` stays the same across edits of a checkout, so the
    key also covers the code itself (here: a different fingerprint)."""
    from musketeer import cache

    run(work)
    monkeypatch.setattr(cache, "code_version", lambda: "other code")
    again = run(work)
    assert "cache" not in again.result.metrics


def test_the_code_fingerprint_follows_the_source_files(tmp_path: Path) -> None:
    from musketeer import cache

    cache.code_version.cache_clear()
    before = cache.code_version()
    module = Path(cache.__file__)
    stat = module.stat()
    try:
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        cache.code_version.cache_clear()
        assert cache.code_version() != before
    finally:
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        cache.code_version.cache_clear()
    assert cache.code_version() == before
