"""One conformance suite: every workflow in tests/workflows/ on every backend.

Each case runs through `musketeer.api.execute` (parse, passes, codegen, run)
and is compared with DuckDB running the same SQL file over the same parquet
files: the final SELECT's rows (in order where it has ORDER BY) and every
`COPY ... TO` file. TPC-H (SF 0.01) runs here for every backend too.

A backend whose capabilities (backends/capabilities.py, the source of
docs/capabilities.md) lack a feature a case needs must refuse it with
UnsupportedError before running; the case is then an xfail naming the
missing feature, and a backend that does not refuse fails the test. A
backend that cannot run a case for another reason is listed in NOTIMPL;
such cases are strict xfails, so the list shrinks as soon as one starts to
pass. A backend that is not available on this machine is skipped with its own
`available()` reason, except in CI, where MUSKETEER_REQUIRE_BACKENDS names the
backends that must run.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlglot

from musketeer import api
from musketeer.backends import registry
from musketeer.backends.capabilities import missing_in
from musketeer.ir import UnsupportedError
from tests import tpch
from tests.conformance import data

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
CASES = sorted(p.stem for p in WORKFLOWS.glob("*.sql"))
BACKENDS = api.backend_names()

#: (backend, case) -> why that backend cannot run the case yet.
NOTIMPL: dict[tuple[str, str], str] = {}


def _params(cases: list[str]) -> list[pytest.param]:
    out = []
    for backend in BACKENDS:
        for case in cases:
            reason = NOTIMPL.get((backend, case))
            marks = [pytest.mark.xfail(reason=f"notimpl: {reason}", strict=True)] if reason else []
            out.append(pytest.param(backend, case, marks=marks, id=f"{backend}-{case}"))
    return out


def run_checked(backend: str, path: Path, data_dir: str) -> api.Execution:
    """`api.execute`, except that a case needing a feature the backend's
    capabilities lack must be refused (UnsupportedError), then xfails."""
    workflow = api.plan_workflow(path, data_dir=data_dir)
    lacking = missing_in(registry.descriptor(backend).capabilities, workflow)
    if lacking:
        with pytest.raises(UnsupportedError):
            api.execute_workflow(workflow, backend=backend, passes=False)
        pytest.xfail(f"notimpl: {backend} lacks {', '.join(lacking)} (docs/capabilities.md)")
    return api.execute_workflow(workflow, backend=backend, passes=False)


def require_backend(name: str) -> None:
    """Skip (locally) or fail (in CI) when a backend cannot run here."""
    try:
        api.get_backend(name)
    except Exception as err:  # noqa: BLE001 - the reason is the message
        required = {b.strip() for b in os.environ.get("MUSKETEER_REQUIRE_BACKENDS", "").split(",") if b.strip()}
        if name in required:
            pytest.fail(f"backend {name} is required here but unavailable: {err}", pytrace=False)
        pytest.skip(f"backend {name} unavailable: {err}")


@pytest.fixture(scope="session")
def conformance_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data.write(tmp_path_factory.mktemp("conformance") / "data")


def duckdb_outputs(sql: str, data_dir: Path, cwd: Path) -> pd.DataFrame:
    """Run the whole workflow file in DuckDB (COPY files land in `cwd`)."""
    con = duckdb.connect()
    for name in data.TABLES:
        path = str(data_dir / f"{name}.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = con.execute(sql)
        return tpch.arrow_to_pandas(result.to_arrow_table())
    finally:
        os.chdir(old)
        con.close()


def read_csv(path: Path) -> pd.DataFrame:
    import pyarrow.csv as pacsv

    return tpch.arrow_to_pandas(pacsv.read_csv(path))


@pytest.mark.parametrize("backend,case", _params(CASES))
def test_workflow(backend: str, case: str, conformance_data: Path, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend(backend)
    path = WORKFLOWS / f"{case}.sql"
    sql = path.read_text()
    oracle_dir, ours_dir = tmp_path / "duckdb", tmp_path / "musketeer"
    oracle_dir.mkdir()
    ours_dir.mkdir()
    expected = duckdb_outputs(sql, conformance_data, oracle_dir)
    monkeypatch.chdir(ours_dir)
    run = run_checked(backend, path, str(conformance_data))
    final_select = sqlglot.parse(sql, read="duckdb")[-1].sql(dialect="duckdb")
    tpch.assert_query_result(run.result.outputs["result"], expected, final_select)
    for copy in (s for s in run.workflow.sinks if s.path):
        tpch.assert_same_rows(read_csv(ours_dir / copy.path), read_csv(oracle_dir / copy.path), None)


@pytest.mark.parametrize("backend,case", _params([f"tpch_q{n:02d}" for n in range(1, 23)]))
def test_tpch(backend: str, case: str, tpch_data_dir: Path, tpch_query_file, tpch_expected) -> None:
    require_backend(backend)
    n = int(case[-2:])
    run = run_checked(backend, tpch_query_file(n), str(tpch_data_dir))
    tpch.assert_query_result(run.result.outputs["result"], tpch_expected(n), tpch.queries()[n])
