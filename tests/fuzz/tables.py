"""Random small typed tables for the SQL fuzzer.

Every table has a small-domain join key `k` and a random subset of typed
columns (int64, float64, decimal(12,2), string, date, bool). Values come
from small pools, so duplicates and join matches are common, mixed with the
edge values engines get wrong: NULL in every column (sometimes every value),
0 and negative numbers, large magnitudes, -0.0, decimals with cents, leap
days and far dates, strings with quotes, newlines, unicode, LIKE wildcards
and trailing spaces. Tables have 0-200 rows; empty tables are common.

Written as parquet, so DuckDB and Musketeer read the same typed values.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: Column type -> (pyarrow type, SQL type name used in casts).
TYPES: dict[str, tuple[pa.DataType, str]] = {
    "int": (pa.int64(), "BIGINT"),
    "float": (pa.float64(), "DOUBLE"),
    "dec": (pa.decimal128(12, 2), "DECIMAL(12,2)"),
    "str": (pa.string(), "VARCHAR"),
    "date": (pa.date32(), "DATE"),
    "bool": (pa.bool_(), "BOOLEAN"),
}

#: Optional columns: name -> type. `k` (int, 0..4) is in every table.
COLUMNS: dict[str, str] = {"i": "int", "j": "int", "f": "float", "d": "dec", "s": "str", "t": "str",
                           "dt": "date", "b": "bool"}

INTS = [0, 1, -1, 2, 3, 7, 10, -10, 42, 100, -100, 1000, 65536, -2**31, 2**31 - 1, 2**40, -2**40]
FLOATS = [0.0, -0.0, 1.0, -1.5, 2.5, 0.1, 3.14159, -2.75, 1e10, -1e10, 1e-9, 123.456, 0.5, 100.0]
DECIMALS = [Decimal(x) for x in ("0.00", "1.00", "-1.50", "2.25", "10.10", "99.99", "-0.01", "12345.67",
                                 "-9999999.99", "0.50", "3.33")]
STRINGS = ["", "a", "A", "b", "abc", "ABC", "O'Brien", 'say "hi"', "line\nbreak", "tab\there", "ünïcödé",
           "日本語", "🙂", "a%b", "x_y", "  pad", "pad  ", "NULL", "null", "0", "10", "-3", "1e3", "zz",
           "back\\slash", "2020-01-01"]
DATES = [dt.date(2020, 2, 29), dt.date(1970, 1, 1), dt.date(1969, 12, 31), dt.date(2000, 1, 1),
         dt.date(1900, 3, 1), dt.date(2099, 12, 31), dt.date(2023, 6, 15), dt.date(2023, 6, 16),
         dt.date(2024, 1, 31), dt.date(1999, 12, 31)]


@dataclass
class Table:
    name: str
    columns: dict[str, str]  # name -> fuzz type, in order
    rows: list[tuple[Any, ...]]

    def arrow(self) -> pa.Table:
        arrays = {c: pa.array([r[n] for r in self.rows], TYPES[t][0]) for n, (c, t) in enumerate(self.columns.items())}
        return pa.table(arrays) if arrays else pa.table({})

    def with_rows(self, rows: list[tuple[Any, ...]]) -> "Table":
        return Table(self.name, self.columns, rows)


@dataclass
class Database:
    tables: dict[str, Table]

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for t in self.tables.values():
            pq.write_table(t.arrow(), directory / f"{t.name}.parquet")
        return directory

    def with_table(self, table: Table) -> "Database":
        return Database({**self.tables, table.name: table})

    def describe(self) -> str:
        return ", ".join(f"{t.name}({', '.join(f'{c} {k}' for c, k in t.columns.items())}; {len(t.rows)} rows)"
                         for t in self.tables.values())


def _value(rng: random.Random, kind: str, null_rate: float) -> Any:
    if rng.random() < null_rate:
        return None
    if kind == "int":
        return rng.choice(INTS) if rng.random() < 0.7 else rng.randint(-20, 20)
    if kind == "float":
        return rng.choice(FLOATS) if rng.random() < 0.7 else round(rng.uniform(-100, 100), 3)
    if kind == "dec":
        return rng.choice(DECIMALS) if rng.random() < 0.7 else Decimal(rng.randint(-10000, 10000)) / 100
    if kind == "str":
        return rng.choice(STRINGS)
    if kind == "date":
        return rng.choice(DATES) if rng.random() < 0.6 else dt.date(2023, 1, 1) + dt.timedelta(rng.randint(-400, 400))
    if kind == "bool":
        return rng.random() < 0.5
    raise ValueError(kind)


def random_table(rng: random.Random, name: str) -> Table:
    picked = [c for c in COLUMNS if rng.random() < 0.6]
    columns = {"k": "int", **{c: COLUMNS[c] for c in picked}}
    size = rng.choice((0, 1, 2, 3, 5, 8, 13, 20, 40, rng.randint(0, 200)))
    rates = {c: rng.choice((0.0, 0.1, 0.1, 0.3, 1.0 if rng.random() < 0.1 else 0.2)) for c in columns}
    rows = []
    for _ in range(size):
        row = []
        for c, kind in columns.items():
            if c == "k":
                row.append(None if rng.random() < rates[c] else rng.randint(0, 4))
            else:
                row.append(_value(rng, kind, rates[c]))
        rows.append(tuple(row))
    if rows and rng.random() < 0.3:  # exact duplicate rows
        rows += rng.sample(rows, min(len(rows), rng.randint(1, 5)))
    return Table(name, columns, rows)


def random_database(rng: random.Random, tables: int = 3) -> Database:
    return Database({f"t{n}": random_table(rng, f"t{n}") for n in range(tables)})
