"""benchmarks/tpch_backends.py: its table shows every failure, and a small real run checks out.

The benchmark's numbers live in benchmarks/README.md; these tests only make
sure the script keeps working and never hides a wrong or failed result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import tpch_backends as tb


def _engine(median: float | None, check: str | None = "ok", error: str | None = None, ratio=None) -> dict:
    return {"runs_s": [median] if median else [], "median_s": median, "check": check, "error": error,
            "compile_s": 0.05, "ratio_to_duckdb": ratio}


def test_table_shows_mismatches_and_errors_and_keeps_them_out_of_the_common_geomean() -> None:
    results = [
        {"query": 1, "rows": 4, "engines": {
            "local": _engine(2.0, ratio=2.0), "dask": _engine(4.0, ratio=4.0), "duckdb": _engine(1.0, None)}},
        {"query": 2, "rows": 100, "engines": {
            "local": _engine(3.0, "MISMATCH", ratio=3.0),
            "dask": _engine(None, None, "run: KeyError: 'x'"), "duckdb": _engine(1.0, None)}},
    ]
    results[1]["engines"]["local"]["check_detail"] = "row 3 differs"
    text = tb.markdown(results, ["local", "dask", "duckdb"], 0.01, 1, {"spark_session": 12.0})
    lines = text.splitlines()
    q2 = next(line for line in lines if line.startswith("| Q02"))
    assert "3.000 ✗" in q2 and "| error |" in q2 and "MISMATCH/error" in q2
    q1 = next(line for line in lines if line.startswith("| Q01"))
    assert q1.endswith("| 4 | ok |")
    geo = next(line for line in lines if line.startswith("| **geomean** "))
    assert "1 of 2 queries" in geo and "| 2.000 | 4.000 | 1.000 |" in geo
    ratio = next(line for line in lines if "ratio to DuckDB" in line)
    assert "2.00x | 4.00x | 1.00x" in ratio
    assert any("Q02 dask: run: KeyError" in line for line in lines)
    assert any("Q02 local: result differs" in line and "row 3 differs" in line for line in lines)
    assert "spark session 12.0 s" in text


def test_backend_list_is_validated() -> None:
    assert tb.parse_backends("local, Spark,duckdb,local") == ["local", "spark", "duckdb"]
    with pytest.raises(Exception, match="backends are some of"):
        tb.parse_backends("local,postgres")


@pytest.mark.slow
def test_two_queries_at_sf_001_on_local_and_dask(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "tpch_backends.py"), "--sf", "0.01", "--repeat", "1",
         "--queries", "1,6", "--backends", "local,dask,duckdb", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["complete"] and [q["query"] for q in doc["queries"]] == [1, 6]
    for q in doc["queries"]:
        for b in ("local", "dask"):
            assert q["engines"][b]["check"] == "ok" and q["engines"][b]["median_s"] > 0
    assert "| Q06 |" in proc.stdout and "ratio to DuckDB" in proc.stdout


def test_report_merges_partial_runs_on_the_engines_all_of_them_timed(tmp_path: Path, capsys) -> None:
    def doc(queries: list[int], backends: list[str], complete: bool) -> dict:
        return {"sf": 1.0, "repeat": 3, "backends": backends, "complete": complete, "command": "x",
                "machine": {"startup_excluded_s": {"spark_session": 9.0}},
                "queries": [{"query": n, "rows": 1, "engines": {b: _engine(float(n), None if b == "duckdb" else "ok",
                                                                           ratio=None if b == "duckdb" else float(n))
                                                                for b in backends}} for n in queries]}
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "m.json"
    a.write_text(json.dumps(doc([1, 2], ["local", "ciel", "duckdb"], False)))
    b.write_text(json.dumps(doc([2, 3], ["local", "duckdb"], True)))
    assert tb.main(["--report", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| query | local s | DuckDB s | rows | check |" in printed and "ciel" not in printed.split("\n\n")[1]
    merged = json.loads(out.read_text())
    assert [q["query"] for q in merged["queries"]] == [1, 2, 3] and merged["backends"] == ["local", "duckdb"]
    assert not merged["complete"] and [m["queries"] for m in merged["merged_from"]] == [[1, 2], [2, 3]]
    assert "spark session (run 2) 9.0 s" in printed
