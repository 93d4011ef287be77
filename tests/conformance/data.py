"""The conformance dataset: small tables with NULLs in every column type.

Written as typed parquet at test time, so Musketeer and the DuckDB oracle
read byte-identical inputs with the same types.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

D = dt.date

EMP = pa.table({
    "id": pa.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], pa.int64()),
    "name": pa.array(["Ann", "Bob", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal", None, "Ivy", "Jo", "Kim"]),
    "dept_id": pa.array([10, 10, 20, 20, 20, 30, None, 40, 10, None, 30, 20], pa.int64()),
    "salary": pa.array([5200.5, 4100.0, None, 6100.25, 3900.0, 7300.0, 2800.0, None, 4500.0, 3300.75, 5000.0, 6100.25]),
    "hired": pa.array([D(2019, 1, 31), D(2020, 2, 29), D(2018, 7, 1), None, D(2021, 12, 15), D(2017, 3, 3),
                       D(2022, 6, 30), D(2020, 1, 1), D(2016, 11, 11), D(2023, 5, 5), D(2019, 8, 19), D(2021, 2, 1)],
                      pa.date32()),
    "bonus": pa.array([Decimal("100.50"), None, Decimal("0.00"), Decimal("250.25"), Decimal("75.00"), None,
                       Decimal("10.10"), Decimal("99.99"), None, Decimal("5.05"), Decimal("300.00"), Decimal("12.34")],
                      pa.decimal128(10, 2)),
    "active": pa.array([True, True, False, None, True, False, True, True, None, True, False, True]),
})

DEPT = pa.table({
    "id": pa.array([10, 20, 30, 50, None], pa.int64()),
    "dname": pa.array(["Sales", "Research", "Ops", "Legal", "Ghost"]),
    "region": pa.array(["EU", "US", None, "EU", "US"]),
    "budget": pa.array([100000.0, 250000.5, 80000.0, None, 1.0]),
})

SALES = pa.table({
    "emp_id": pa.array([1, 1, 2, 3, 3, 3, 4, 5, None, 6, 7, 7, 8, 9, 9, 11, 12, 12, 99, None], pa.int64()),
    "day": pa.array([D(2023, 1, 5), D(2023, 2, 10), D(2023, 1, 20), D(2023, 3, 1), D(2023, 3, 15), D(2023, 4, 2),
                     D(2023, 1, 31), D(2023, 2, 28), D(2023, 5, 5), None, D(2023, 6, 1), D(2023, 6, 2),
                     D(2023, 7, 7), D(2023, 8, 8), D(2023, 8, 9), D(2023, 9, 9), D(2023, 10, 10), D(2023, 12, 31),
                     D(2023, 11, 11), D(2023, 3, 3)], pa.date32()),
    "amount": pa.array([120.0, 80.5, 300.25, None, 45.0, 45.0, 990.0, 10.0, 55.5, 60.0, 70.0, 70.0, 5.0,
                        400.0, 1.5, 222.0, 18.0, 19.0, 1000.0, 2.0]),
    "qty": pa.array([1, 2, 3, 1, None, 1, 10, 1, 2, 3, 1, 1, None, 4, 1, 2, 1, 1, 9, None], pa.int64()),
    "note": pa.array(["first", None, "big deal", "x%y", "x_y", "n/a", "BIG deal", None, "anon", "late", "dup",
                      "dup", "", "small", "tiny", "ok", "ok", "year end", "unknown emp", "anon"]),
})

TABLES = {"emp": EMP, "dept": DEPT, "sales": SALES}


def write(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, table in TABLES.items():
        pq.write_table(table, directory / f"{name}.parquet")
    return directory
