"""Helpers for the multi-party tests.

- `cleartext_answer`: the oracle. DuckDB runs the query text on the union
  of the parties' data (every table in one place, typed as the parties
  config declares it), independent of Musketeer's own engines.
- `same_answer`: MPC result vs oracle, as multisets of rows, up to the
  secure stages' fixed-point precision, NULLs equal only to NULLs.
- `run_parties`: a test module as N MPyC party processes, for tests that
  drive the secure engine directly, below `musketeer mpc run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_DUCKDB_TYPES = {"int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN", "string": "VARCHAR", "date": "DATE",
                 "timestamp": "TIMESTAMP"}


def _sql_type(dtype) -> str:
    return _DUCKDB_TYPES.get(dtype.kind) or f"DECIMAL({dtype.precision},{dtype.scale})"


def cleartext_answer(query: str, config) -> pd.DataFrame:
    """DuckDB's answer to `query` (SQL text, or the path of a .sql file)
    over every party's table of `config` in one place."""
    if query.endswith(".sql") and os.path.exists(query):
        with open(query, encoding="utf-8") as f:
            query = f.read()
    con = duckdb.connect()
    try:
        for t in config.tables.values():
            path = t.path.replace("'", "''")
            cast = ", ".join(f'CAST("{c}" AS {_sql_type(d)}) AS "{c}"' for c, d in t.columns)
            if t.format == "parquet":
                source = f"read_parquet('{path}')"
            else:
                source = f"read_csv('{path}', header = true, all_varchar = true)"
            con.execute(f'CREATE VIEW "{t.name}" AS SELECT {cast} FROM {source}')
        return con.execute(query).df()
    finally:
        con.close()


def _cell(v) -> tuple:
    """A sortable, comparable form of one value: NULL, number or text."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return (0, 0.0)
    if isinstance(v, (bool, int, float)) or hasattr(v, "__float__") and not isinstance(v, str):
        try:
            return (1, float(v))
        except (TypeError, ValueError):
            pass
    return (2, str(v))


def same_answer(got: pd.DataFrame, want: pd.DataFrame, rel: float = 1e-4, ordered: bool = False) -> bool:
    """Same rows (columns matched by position; as multisets unless
    `ordered`), numbers equal up to fixed-point precision (relative `rel`,
    absolute 1e-3), NULL only equal to NULL."""
    if len(got.columns) != len(want.columns) or len(got) != len(want):
        return False

    def rows(frame: pd.DataFrame) -> list[tuple]:
        out = [tuple(_cell(v) for v in row) for row in frame.itertuples(index=False, name=None)]
        if ordered:
            return out
        # sort on rounded numbers, so fixed-point noise does not reorder rows
        return sorted(out, key=lambda r: [(t, round(v, 2) if t == 1 else v) for t, v in r])

    for a, b in zip(rows(got), rows(want)):
        for (ta, x), (tb, y) in zip(a, b):
            if ta != tb:
                return False
            if ta == 1 and abs(x - y) > max(1e-3, rel * abs(y)):
                return False
            if ta == 2 and x != y:
                return False
    return True


def run_parties(script: str, n: int, args: list[str], out_dir: Path, *, env: dict[str, str] | None = None,
                timeout: float = 600) -> list[dict]:
    """Party i runs `script i *args out_dir/out{i}.json`; every process
    must exit 0 (its stderr tail is the failure message)."""
    outs = [out_dir / f"out{i}.json" for i in range(n)]
    procs = [subprocess.Popen([sys.executable, script, str(i), *args, str(outs[i])], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, **env} if env else None)
             for i in range(n)]
    try:
        errs = [p.communicate(timeout=timeout)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, err in zip(procs, errs):
        assert p.returncode == 0, err[-10000:]
    return [json.loads(out.read_text()) for out in outs]


def write_parties(directory: Path, parties: list[str], recipients: list[str], ports: list[int],
                  tables: dict[str, tuple[str, pd.DataFrame, dict[str, str], dict[str, list[str]]]]) -> Path:
    """A parties config and its inputs (parquet, NULLs kept): `tables`
    maps name -> (owner, rows, column types, visible_to). Returns the
    config path."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["recipients = [" + ", ".join(f'"{r}"' for r in recipients) + "]", ""]
    for p, port in zip(parties, ports):
        lines += ["[[party]]", f'name = "{p}"', 'host = "127.0.0.1"', f"port = {port}", ""]
    for name, (owner, frame, types, visible) in tables.items():
        frame.to_parquet(directory / f"{name}.parquet", index=False)
        lines += [f"[tables.{name}]", f'owner = "{owner}"', f'path = "{name}.parquet"',
                  "columns = { " + ", ".join(f'{c} = "{t}"' for c, t in types.items()) + " }"]
        if visible:
            lines.append("visible_to = { " + ", ".join(
                f"{c} = [" + ", ".join(f'"{w}"' for w in who) + "]" for c, who in visible.items()) + " }")
        lines.append("")
    path = directory / "parties.toml"
    path.write_text("\n".join(lines))
    return path


def run_query(config_path: Path, sql: str, parties: list[str], *, name: str = "q", timeout: float = 600,
              extra: list[str] | None = None) -> tuple[dict, pd.DataFrame | None]:
    """`musketeer mpc run` for every party (one process each) on `sql`;
    returns the runs and the first recipient's result (parquet, NULLs
    kept), or None if it wrote none."""
    from musketeer.mpc.launch import run_all

    directory = config_path.parent
    query = directory / f"{name}.sql"
    query.write_text(sql)
    out = directory / f"{name}.result.parquet"
    if out.exists():
        out.unlink()
    runs = run_all(str(query), str(config_path), parties, timeout=timeout,
                   extra=["--output", str(out), *(extra or [])])
    return runs, (pd.read_parquet(out) if out.exists() else None)
