"""Regenerate the small example dataset in examples/data/ (committed, so
nobody needs to run this; kept so the data's shape is documented and easy
to change). Deterministic: the same seed gives the same files.

    python examples/make_data.py
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
SEED = 20240501

REGIONS = [("EUR", "Europe"), ("NAM", "North America"), ("SAM", "South America"), ("ASI", "Asia"), ("AFR", "Africa")]
SEGMENTS = ["retail", "wholesale", "online"]
STATUSES = ["shipped"] * 6 + ["pending"] * 2 + ["cancelled", "returned"]
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivo", "Jin", "Kofi", "Lea", "Mei", "Nils"]
LAST = ["Smith", "Okafor", "Rossi", "Tanaka", "Silva", "Novak", "Khan", "Berg", "Diaz", "Moreau"]


def write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with open(DATA / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(["" if v is None else v for v in row] for row in rows)


def main() -> None:
    rng = random.Random(SEED)
    DATA.mkdir(exist_ok=True)
    write("regions", ["region_code", "region_name"], [list(r) for r in REGIONS])

    customers = []
    for cid in range(1, 81):
        region = rng.choice(REGIONS)[0] if rng.random() > 0.05 else None  # a few unknown regions
        segment = rng.choice(SEGMENTS)
        since = dt.date(2021, 1, 1) + dt.timedelta(days=rng.randrange(3 * 365))
        customers.append([cid, f"{rng.choice(FIRST)} {rng.choice(LAST)}", region, segment, since.isoformat()])
    write("customers", ["customer_id", "name", "region_code", "segment", "signup_date"], customers)

    orders = []
    for oid in range(1001, 1401):
        cid = rng.randint(1, 84)  # ids 81-84 have no customer row: inner joins drop them
        day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(366))
        quantity = rng.randint(1, 12)
        amount = round(quantity * rng.uniform(4.5, 120.0), 2) if rng.random() > 0.04 else None  # not yet priced
        discount = round(rng.choice([0.0, 0.0, 0.05, 0.1, 0.15]), 2) if rng.random() > 0.1 else None
        orders.append([oid, cid, day.isoformat(), rng.choice(STATUSES), quantity, amount, discount])
    write("orders", ["order_id", "customer_id", "order_date", "status", "quantity", "amount", "discount"], orders)


if __name__ == "__main__":
    main()
