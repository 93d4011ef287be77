"""Shrink a failing fuzz case and save it as a regression workflow.

Shrinking is greedy: drop one clause (a select item, a join, WHERE, GROUP
BY, HAVING, DISTINCT, ORDER BY/LIMIT, the set operation), keep the smaller
query if it still fails, repeat; then drop rows of each table (halves, then
quarters, ... then single rows) while it still fails. "Still fails" is the
caller's predicate (the same engine still disagrees with the oracle).

A saved case is a folder under tests/workflows/fuzz/: `query.sql` (with a
comment saying where it came from and what was wrong) and one parquet file
per table it reads. tests/conformance/test_fuzz_regressions.py runs every
such folder on every engine with the same oracle as the fuzzer. A line
`-- xfail: <reason>` in query.sql marks a known, explained failure (a strict
xfail: it must fail, so it is removed once fixed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from tests.fuzz.queries import Query
from tests.fuzz.tables import Database

REGRESSIONS = Path(__file__).resolve().parent.parent / "workflows" / "fuzz"

Fails = Callable[[Database, Query], bool]


def _variants(q: Query) -> Iterator[Query]:
    if q.setop is not None:
        yield q.without(setop=None)
        yield replace(q.setop[1], order=q.order, limit=q.limit)
    if q.limit is not None:
        yield q.without(limit=None)
    if q.order is not None and q.limit is None:
        yield q.without(order=None)
    if q.having:
        yield q.without(having=None)
    if q.where:
        yield q.without(where=None)
    for n in range(len(q.joins) - 1, -1, -1):
        yield q.without(joins=q.joins[:n] + q.joins[n + 1:])
    if q.distinct:
        yield q.without(distinct=False)
    if len(q.items) > 1:
        for n in range(len(q.items)):
            items = q.items[:n] + q.items[n + 1:]
            order = None if q.order is None else q.order[:n] + q.order[n + 1:]
            setop = q.setop
            if setop is not None:
                other = setop[1]
                setop = (setop[0], other.without(items=other.items[:n] + other.items[n + 1:]))
            yield q.without(items=items, order=order, setop=setop)
    if q.group_by:
        if len(q.group_by) > 1:
            for n in range(len(q.group_by)):
                yield q.without(group_by=q.group_by[:n] + q.group_by[n + 1:])
        yield q.without(group_by=[], having=None)


def shrink(db: Database, query: Query, fails: Fails, budget: int = 200) -> tuple[Database, Query]:
    """The smallest (db, query) found, within `budget` predicate calls."""
    calls = 0

    def still(d: Database, q: Query) -> bool:
        nonlocal calls
        calls += 1
        try:
            return fails(d, q)
        except Exception:  # noqa: BLE001 - a variant the generator's invariants do not cover
            return False

    changed = True
    while changed and calls < budget:
        changed = False
        for variant in _variants(query):
            if calls >= budget:
                break
            if still(db, variant):
                query, changed = variant, True
                break
    used = referenced_tables(query.sql(), db)
    db = Database({n: t for n, t in db.tables.items() if n in used})
    for name in list(db.tables):
        chunk = max(1, len(db.tables[name].rows) // 2)
        while chunk >= 1 and calls < budget:
            rows = db.tables[name].rows
            start, progressed = 0, False
            while start < len(rows) and calls < budget:
                smaller = rows[:start] + rows[start + chunk:]
                candidate = db.with_table(db.tables[name].with_rows(smaller))
                if still(candidate, query):
                    db, rows, progressed = candidate, smaller, True
                else:
                    start += chunk
            if not progressed:
                chunk //= 2
    return db, query


def referenced_tables(sql: str, db: Database) -> list[str]:
    return [n for n in db.tables if re.search(rf"\b{re.escape(n)}\b", sql)]


def save(db: Database, sql: str, name: str, note: str, directory: Path = REGRESSIONS,
         xfail: str | None = None, whole: str | None = None) -> Path:
    """Write the case folder (see the module docstring). A TLP case also
    has whole.sql, the query whose partitions query.sql unites."""
    folder = directory / name
    folder.mkdir(parents=True, exist_ok=True)
    if whole is not None:
        (folder / "whole.sql").write_text(whole + ";\n", encoding="utf-8")
    header = [f"-- {line}" for line in note.splitlines()]
    if xfail:
        header.append(f"-- xfail: {xfail}")
    (folder / "query.sql").write_text("\n".join(header) + "\n" + sql + ";\n", encoding="utf-8")
    used = referenced_tables(sql, db)
    Database({n: db.tables[n] for n in used}).write(folder)
    return folder
