"""Shrunk fuzz failures (tests/workflows/fuzz/<case>/: query.sql and its
parquet tables, written by tests/fuzz/shrink.py) on every backend, judged
like the fuzzer judges them: the same rows as DuckDB on the same SQL text,
or the same data error, or (a TLP case, a UNION ALL of the three
partitions) the same rows as the query it partitions; a refusal is allowed
only when every engine refuses. `-- xfail: reason` in query.sql marks a
known failure (strict: it must still fail); `-- xfail[duckdb]: reason` on
the engines named only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from musketeer import api
from tests.conformance.test_conformance import require_backend
from tests.fuzz import oracle
from tests.fuzz.shrink import REGRESSIONS

CASES = sorted(p.parent for p in REGRESSIONS.glob("*/query.sql"))


def _xfail(case: Path, backend: str) -> str | None:
    """`-- xfail: reason` (every engine) or `-- xfail[engine,...]: reason`."""
    for line in (case / "query.sql").read_text(encoding="utf-8").splitlines():
        found = re.match(r"-- xfail(?:\[([\w,]+)\])?: (.*)", line)
        if found and (found.group(1) is None or backend in found.group(1).split(",")):
            return found.group(2).strip()
    return None


def _params() -> list:
    out = []
    for backend in api.BACKENDS:
        for case in CASES:
            reason = _xfail(case, backend)
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            out.append(pytest.param(backend, case, marks=marks, id=f"{backend}-{case.name}"))
    return out


@pytest.mark.parametrize("backend,case", _params())
def test_fuzz_regression(backend: str, case: Path) -> None:
    require_backend(backend)
    text = (case / "query.sql").read_text(encoding="utf-8")
    sql = "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip().rstrip(";")
    tables = sorted(p.stem for p in case.glob("*.parquet"))
    if (case / "whole.sql").exists():  # a TLP case: query.sql is the union of whole.sql's partitions
        whole = (case / "whole.sql").read_text(encoding="utf-8").strip().rstrip(";")
        verdict = oracle.check_tlp(whole, sql, case, [backend])
    else:
        verdict = oracle.check_sql(sql, case, tables, [backend])
    assert not verdict.disagreements, "\n".join(f"{b}: {d}" for b, d in verdict.disagreements)
