"""Run one SQL text on DuckDB and on Musketeer's engines, and judge them.

Outcomes per runner:

- ``rows``: an answer (a DataFrame);
- ``refused``: Musketeer's frontend or an engine's generator said it cannot
  do this query (a located MusketeerError before anything ran); DuckDB's
  binder or parser rejecting the text counts as ``invalid`` (the generator
  wrote something DuckDB's dialect does not accept: not judged);
- ``data_error``: a bad value at run time (DuckDB's conversion / out of
  range errors; Musketeer's DataError);
- ``crash``: anything else (an internal error), always a failure.

Judgement (`judge`): a refusal is counted, not failed, but every engine must
refuse or answer alike; when DuckDB answers, every engine that answers must
give the same rows (tests/tpch.assert_query_result: order where ORDER BY
says, floats within 1e-6); when DuckDB reports a data error, every engine
must report a DataError too.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from musketeer import api
from musketeer.ir import DataError, MusketeerError
from tests import tpch


@dataclass
class Outcome:
    kind: str  # rows | refused | invalid | data_error | crash
    frame: pd.DataFrame | None = None
    message: str = ""

    def short(self) -> str:
        if self.kind == "rows":
            return f"{len(self.frame)} rows"  # type: ignore[arg-type]
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"{self.kind}: {first[:300]}"


DUCKDB_DATA_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException)


def run_duckdb(sql: str, data_dir: Path, tables: list[str]) -> Outcome:
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        for name in tables:
            path = str(data_dir / f"{name}.parquet").replace("'", "''")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
        try:
            table = con.execute(sql).to_arrow_table()
        except DUCKDB_DATA_ERRORS as err:
            return Outcome("data_error", message=str(err))
        except duckdb.Error as err:
            return Outcome("invalid", message=f"{type(err).__name__}: {err}")
        return Outcome("rows", tpch.arrow_to_pandas(table))
    finally:
        con.close()


def plan(sql: str, data_dir: Path) -> tuple[Any, Outcome | None]:
    """Parse and optimize once (engine-independent): (workflow, None) or
    (None, the refusal)."""
    fd, path = tempfile.mkstemp(suffix=".sql", prefix="fuzz-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(sql + ";\n")
        try:
            return api.plan_workflow(path, data_dir=str(data_dir)), None
        except DataError as err:
            return None, Outcome("data_error", message=str(err))
        except MusketeerError as err:
            return None, Outcome("refused", message=str(err))
        except Exception as err:  # noqa: BLE001 - an internal error is a finding
            return None, Outcome("crash", message=f"{type(err).__name__}: {err}")
    finally:
        os.unlink(path)


def run_engine(workflow: Any, backend: str) -> Outcome:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = api.execute_workflow(workflow, backend=backend, passes=False)
        return Outcome("rows", run.result.outputs["result"])
    except DataError as err:
        return Outcome("data_error", message=str(err))
    except MusketeerError as err:
        return Outcome("refused", message=str(err))
    except Exception as err:  # noqa: BLE001 - an internal error is a finding
        return Outcome("crash", message=f"{type(err).__name__}: {err}")


def same_rows(actual: pd.DataFrame, expected: pd.DataFrame, sql: str) -> str | None:
    try:
        tpch.assert_query_result(actual, expected, sql)
    except AssertionError as err:
        return " ".join(str(err).split())[:600]
    return None


@dataclass
class Verdict:
    """What happened to one query: per-runner outcomes and any disagreements
    ([(backend, what)]); `status` summarises for the counters."""

    sql: str
    duckdb: Outcome
    engines: dict[str, Outcome]
    disagreements: list[tuple[str, str]]

    @property
    def status(self) -> str:
        if self.disagreements:
            return "disagree"
        if self.duckdb.kind == "invalid":
            return "invalid"
        kinds = {o.kind for o in self.engines.values()}
        return "refused" if kinds == {"refused"} else ("data_error" if kinds == {"data_error"} else "agree")


def judge(sql: str, expected: Outcome, engines: dict[str, Outcome]) -> list[tuple[str, str]]:
    """[(backend, what is wrong)] for one query (see the module docstring)."""
    problems: list[tuple[str, str]] = []
    refused = {b for b, o in engines.items() if o.kind == "refused"}
    if refused and refused != set(engines):
        answered = sorted(set(engines) - refused)
        for b in sorted(refused):
            problems.append((b, f"refused ({engines[b].short()}) while {', '.join(answered)} answered"))
    for b, o in engines.items():
        if o.kind == "crash":
            problems.append((b, o.short()))
        elif expected.kind == "invalid" or o.kind == "refused":
            continue
        elif expected.kind == "data_error" and o.kind != "data_error":
            problems.append((b, f"DuckDB reports a data error ({expected.short()}) but {b} gave {o.short()}"))
        elif expected.kind == "rows" and o.kind == "data_error" and len(expected.frame) == 0 \
                and re.search(r"\bLIMIT 0\s*$", sql):
            continue  # DuckDB never evaluates a LIMIT 0 query's values; SQL leaves that unspecified
        elif expected.kind == "rows" and o.kind == "data_error":
            problems.append((b, f"{o.short()} where DuckDB answered {expected.short()}"))
        elif expected.kind == "rows" and o.kind == "rows":
            diff = same_rows(o.frame, expected.frame, sql)  # type: ignore[arg-type]
            if diff:
                problems.append((b, diff))
    return problems


def check_sql(sql: str, data_dir: Path, tables: list[str], backends: list[str]) -> Verdict:
    """DuckDB's answer and each engine's, judged."""
    expected = run_duckdb(sql, data_dir, tables)
    workflow, refusal = plan(sql, data_dir)
    if refusal is not None:
        engines = {b: refusal for b in backends}
    else:
        engines = {b: run_engine(workflow, b) for b in backends}
    return Verdict(sql, expected, engines, judge(sql, expected, engines))


def check_tlp(query_sql: str, union_sql: str, data_dir: Path, backends: list[str]) -> Verdict:
    """Ternary logic partitioning on each engine: Q's rows must equal the
    union of its three partitions' rows (no DuckDB needed)."""
    whole, refusal = plan(query_sql, data_dir)
    parts, refusal2 = plan(union_sql, data_dir)
    refusal = refusal or refusal2
    engines: dict[str, Outcome] = {}
    problems: list[tuple[str, str]] = []
    for b in backends:
        if refusal is not None:
            engines[b] = refusal
            continue
        a, u = run_engine(whole, b), run_engine(parts, b)
        engines[b] = u
        if {a.kind, u.kind} == {"rows"}:
            diff = same_rows(u.frame, a.frame, union_sql)  # type: ignore[arg-type]
            if diff:
                problems.append((b, f"TLP: the partitions' union differs from the query: {diff}"))
        elif "crash" in (a.kind, u.kind):
            problems.append((b, (a if a.kind == "crash" else u).short()))
        elif "data_error" in (a.kind, u.kind):
            continue  # p itself may hold the bad value (a cast of a string), which Q never evaluates
        elif a.kind != u.kind:
            problems.append((b, f"TLP: the query gave {a.short()} but the partitions {u.short()}"))
    if refusal is not None and refusal.kind == "crash":
        problems.append(("frontend", refusal.short()))
    return Verdict(union_sql, Outcome("rows" if refusal is None else refusal.kind), engines, problems)
