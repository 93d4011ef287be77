"""`musketeer mpc demo`: three parties on 127.0.0.1 with generated data.

For each scenario: write inputs + parties.toml to a temporary directory,
start the three parties as OS processes (`musketeer mpc run`), print the
recipient's answer, the cleartext answer and the local/secure time split.

The cleartext check is independent of Musketeer's engines: DuckDB runs the
query text on every party's table in one place.
"""

from __future__ import annotations

import io
import os
import tempfile

import pandas as pd

from musketeer.mpc.config import PartiesConfig, load_config
from musketeer.mpc.examples.data import SCENARIOS, write_scenario
from musketeer.mpc.launch import free_ports, metrics, run_all


def _duckdb_type(dtype) -> str:
    return {"int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN", "string": "VARCHAR", "date": "DATE",
            "timestamp": "TIMESTAMP"}.get(dtype.kind) or f"DECIMAL({dtype.precision},{dtype.scale})"


def cleartext_answer(sql: str, config: PartiesConfig) -> pd.DataFrame:
    """The query's answer with every party's table in one place, computed
    by DuckDB (not by any Musketeer engine), tables typed as the config
    declares them."""
    import duckdb

    con = duckdb.connect()
    try:
        for t in config.tables.values():
            path = t.path.replace("'", "''")
            if t.format == "parquet":
                cast = ", ".join(f'CAST("{c}" AS {_duckdb_type(d)}) AS "{c}"' for c, d in t.columns)
                con.execute(f'CREATE VIEW "{t.name}" AS SELECT {cast} FROM read_parquet(\'{path}\')')
            else:
                cols = ", ".join(f"'{c}': '{_duckdb_type(d)}'" for c, d in t.columns)
                con.execute(f'CREATE VIEW "{t.name}" AS SELECT * FROM read_csv(\'{path}\', header = true, '
                            f'columns = {{{cols}}})')
        return con.execute(sql).df()
    finally:
        con.close()


def same_answer(got: pd.DataFrame, want: pd.DataFrame, rel: float = 1e-4) -> bool:
    """Equal as multisets of rows, column by column in position, up to
    fixed-point precision (relative `rel`, absolute 1e-3)."""
    if len(got.columns) != len(want.columns) or len(got) != len(want):
        return False

    def rows(frame: pd.DataFrame) -> list[tuple]:
        vals = [[None if pd.isna(v) else round(float(v), 3) for v in frame[c]] for c in frame.columns]
        return sorted(zip(*vals), key=lambda r: [(v is None, v or 0.0) for v in r])

    for a, b in zip(rows(got), rows(want)):
        for x, y in zip(a, b):
            if (x is None) != (y is None) or (x is not None and abs(x - y) > max(1e-3, rel * abs(y))):
                return False
    return True


def run_scenario(name: str, rows: int, directory: str, *, mpc_only: bool = False, tls: bool = False) -> dict:
    config_path = write_scenario(name, os.path.join(directory, name), rows, free_ports(3))
    query = os.path.join(os.path.dirname(config_path), "query.sql")
    parties = list(SCENARIOS[name].parties)
    extra: list[str] = []
    if tls:
        from musketeer.mpc.tls import make_keys

        keys = os.path.join(os.path.dirname(config_path), "mpc_keys")
        if not os.path.isdir(keys):
            make_keys(load_config(config_path), keys)
        extra = ["--tls", "--keys", keys]
    runs = run_all(query, config_path, parties, mpc_only=mpc_only, timeout=1800, extra=extra)
    failed = [r for r in runs.values() if r.returncode != 0]
    if failed:
        return {"ok": False, "error": failed[0].stderr.strip().splitlines()[-1:]}
    config = load_config(config_path)
    recipient = config.recipients[0]
    got = pd.read_csv(io.StringIO(runs[recipient].stdout), sep=r"\s+")
    with open(query, encoding="utf-8") as f:
        want = cleartext_answer(f.read(), config)
    m = metrics(runs[recipient].stderr)
    return {"ok": same_answer(got, want), "got": got, "want": want, "recipient": recipient,
            "local": m.get("local_seconds", 0.0), "secure": m.get("secure_seconds", 0.0),
            "wall": max(r.seconds for r in runs.values())}


def run_demo(rows: int, names: list[str], *, mpc_only: bool = False, tls: bool = False) -> int:
    code = 0
    with tempfile.TemporaryDirectory(prefix="musketeer-mpc-demo-") as tmp:
        for name in names:
            sc = SCENARIOS[name]
            print(f"== {name}: parties {', '.join(sc.parties)} on 127.0.0.1{' (TLS)' if tls else ''}, "
                  f"{rows} rows each; answer to {', '.join(sc.recipients)}", flush=True)
            for only in ([False, True] if mpc_only else [False]):
                tag = "mpc-only" if only else "split"
                print(f"  [{tag}] generating data, starting 3 processes ...", flush=True)
                res = run_scenario(name, rows, tmp, mpc_only=only, tls=tls)
                if not res["ok"] and "error" in res:
                    print(f"  [{tag}] failed: {' '.join(res['error'])}")
                    code = 1
                    continue
                print(f"  [{tag}] answer at {res['recipient']}:")
                print("    " + res["got"].to_string(index=False).replace("\n", "\n    "))
                if res["ok"]:
                    print("  cleartext check (all tables in one place, DuckDB): matches")
                else:
                    print("  cleartext check: DIFFERS; the cleartext answer is:")
                    print("    " + res["want"].to_string(index=False).replace("\n", "\n    "))
                print(f"  time: local {res['local']:.2f} s, secure {res['secure']:.2f} s, wall {res['wall']:.2f} s",
                      flush=True)
                code = code or (0 if res["ok"] else 1)
    return code
