"""Generated inputs and parties configs for the three demo scenarios.

Deterministic (seeded) so tests and benchmarks can compare runs; values
stay inside the fixed-point range of the secure stages (|x| < 2**31).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from musketeer.mpc.examples.queries import CREDIT, HHI, PATIENTS


@dataclass(frozen=True)
class Scenario:
    name: str
    query: str
    parties: tuple[str, ...]
    recipients: tuple[str, ...]
    tables: dict[str, tuple[str, dict[str, str], dict[str, list[str]]]]  # name -> (owner, columns, visible_to)


SCENARIOS: dict[str, Scenario] = {
    "hhi": Scenario("hhi", HHI, ("acme", "bolt", "cabco"), ("acme", "bolt", "cabco"), {
        "trips_a": ("acme", {"trip_id": "int64", "fare": "decimal(10,2)"}, {}),
        "trips_b": ("bolt", {"trip_id": "int64", "fare": "decimal(10,2)"}, {}),
        "trips_c": ("cabco", {"trip_id": "int64", "fare": "decimal(10,2)"}, {}),
    }),
    "credit": Scenario("credit", CREDIT, ("regulator", "bank_b", "bank_c"), ("regulator",), {
        "zips": ("regulator", {"ssn": "int64", "zip": "int64"}, {}),
        "scores_b": ("bank_b", {"ssn": "int64", "score": "int64"}, {"ssn": ["regulator"]}),
        "scores_c": ("bank_c", {"ssn": "int64", "score": "int64"}, {"ssn": ["regulator"]}),
    }),
    "patients": Scenario("patients", PATIENTS, ("hosp_a", "hosp_b", "hosp_c"), ("hosp_a",), {
        "visits_a": ("hosp_a", {"pid": "int64", "diag": "int64"}, {"pid": ["*"]}),
        "visits_b": ("hosp_b", {"pid": "int64", "diag": "int64"}, {"pid": ["*"]}),
        "visits_c": ("hosp_c", {"pid": "int64", "diag": "int64"}, {"pid": ["*"]}),
    }),
}


def _frames(name: str, rows: int, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    if name == "hhi":
        return {t: pd.DataFrame({"trip_id": np.arange(rows, dtype=np.int64),
                                 "fare": np.round(rng.uniform(3, 80, rows), 2)}) for t in ("trips_a", "trips_b", "trips_c")}
    if name == "credit":
        # an integer population: numpy samples without materialising 9e8 SSNs (same draws as the array form)
        people = 100_000_000 + rng.choice(999_999_999 - 100_000_000, size=rows * 2, replace=False)
        zips = pd.DataFrame({"ssn": people, "zip": rng.integers(10001, 10021, rows * 2)})
        out = {"zips": zips}
        for t in ("scores_b", "scores_c"):
            out[t] = pd.DataFrame({"ssn": rng.choice(people, size=rows, replace=False),
                                   "score": rng.integers(300, 851, rows)})
        return out
    pool = np.arange(1, rows * 2 + 1)
    return {t: pd.DataFrame({"pid": rng.choice(pool, size=rows, replace=False),
                             "diag": rng.integers(1, 11, rows)}) for t in ("visits_a", "visits_b", "visits_c")}


def write_scenario(name: str, directory: str, rows: int, ports: list[int], seed: int = 7, fmt: str = "csv") -> str:
    """Write the scenario's inputs (CSV, or parquet for large benchmark
    sizes) and parties.toml; returns the config path."""
    sc = SCENARIOS[name]
    os.makedirs(directory, exist_ok=True)
    for table, frame in _frames(name, rows, np.random.default_rng(seed)).items():
        if fmt == "parquet":
            frame.to_parquet(os.path.join(directory, f"{table}.parquet"), index=False)
        else:
            frame.to_csv(os.path.join(directory, f"{table}.csv"), index=False)
    lines = [f"recipients = [{', '.join(repr(r) for r in sc.recipients)}]".replace("'", '"'), ""]
    for party, port in zip(sc.parties, ports):
        lines += ["[[party]]", f'name = "{party}"', 'host = "127.0.0.1"', f"port = {port}", ""]
    for table, (owner, cols, vis) in sc.tables.items():
        lines += [f"[tables.{table}]", f'owner = "{owner}"', f'path = "{table}.{fmt}"',
                  "columns = { " + ", ".join(f'{c} = "{t}"' for c, t in cols.items()) + " }"]
        if vis:
            lines.append("visible_to = { " + ", ".join(
                f"{c} = [{', '.join(chr(34) + w + chr(34) for w in who)}]" for c, who in vis.items()) + " }")
        lines.append("")
    path = os.path.join(directory, "parties.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    with open(os.path.join(directory, "query.sql"), "w", encoding="utf-8") as f:
        f.write(sc.query.strip() + "\n")
    return path
