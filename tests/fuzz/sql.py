"""The SQL fuzz loop: databases, queries, oracles, counters, shrinking.

Case n of seed S is reproducible on its own: its database is number n // 25
(drawn from Random((S, db))), its query from Random((S, n)). About a quarter
of the cases are TLP checks (each engine against itself), the rest are
differential checks against DuckDB.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fuzz import oracle, shrink
from tests.fuzz.queries import Generator, Query, tlp_queries
from tests.fuzz.tables import Database, random_database

QUERIES_PER_DATABASE = 25


@dataclass
class Failure:
    seed: int
    case: int
    backend: str
    detail: str
    sql: str
    kind: str  # "duckdb" | "tlp"
    saved: Path | None = None
    shrunk_sql: str | None = None

    def __str__(self) -> str:
        text = f"seed {self.seed} case {self.case} [{self.kind}] on {self.backend}: {self.detail}\n  {self.sql}"
        if self.shrunk_sql:
            text += f"\n  shrunk: {self.shrunk_sql}"
        if self.saved:
            text += f"\n  saved: {self.saved}"
        return text


@dataclass
class SqlRun:
    seed: int
    backends: list[str]
    queries: int = 0
    status: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.status.items()))
        return (f"seed {self.seed}: {self.queries} queries on {','.join(self.backends)} in {self.seconds:.0f} s: "
                f"{counts}; {len(self.failures)} disagreement(s)")


def database(seed: int, number: int) -> Database:
    return random_database(random.Random(f"{seed}/db/{number}"))


def case(seed: int, n: int, db: Database, avoid: frozenset[str] = frozenset()) -> tuple[str, Query, str | None]:
    """('duckdb', query, None) or ('tlp', base query, predicate) for case n."""
    rng = random.Random(f"{seed}/q/{n}")
    gen = Generator(rng, db, avoid=avoid)
    if rng.random() < 0.25:
        q, p = gen.tlp_base()
        return "tlp", q, p
    return "duckdb", gen.query(), None


def _verdict(kind: str, q: Query, p: str | None, data_dir: Path, db: Database,
             backends: list[str]) -> oracle.Verdict:
    if kind == "tlp":
        whole, union = tlp_queries(q, p)  # type: ignore[arg-type]
        return oracle.check_tlp(whole, union, data_dir, backends)
    return oracle.check_sql(q.sql(), data_dir, list(db.tables), backends)


def fuzz_sql(seed: int, queries: int, backends: list[str], workdir: Path, *, start: int = 0,
             minimize: bool = True, save_to: Path | None = None, progress: Any = None,
             avoid: frozenset[str] = frozenset()) -> SqlRun:
    """Run cases start..start+queries-1 of `seed` on `backends`."""
    run = SqlRun(seed, list(backends))
    began = time.perf_counter()
    db_number, db, data_dir = None, None, None
    for n in range(start, start + queries):
        if n // QUERIES_PER_DATABASE != db_number:
            db_number = n // QUERIES_PER_DATABASE
            db = database(seed, db_number)
            data_dir = db.write(workdir / f"db{db_number}")
        assert db is not None and data_dir is not None
        kind, q, p = case(seed, n, db, avoid)
        verdict = _verdict(kind, q, p, data_dir, db, backends)
        run.queries += 1
        run.status[verdict.status] += 1
        for backend, detail in verdict.disagreements:
            failure = Failure(seed, n, backend, detail, verdict.sql, kind)
            if minimize and backend in backends:
                small_db, small_q = _shrink(kind, q, p, db, backend, workdir / f"shrink{n}")
                failure.shrunk_sql = tlp_queries(small_q, p)[1] if kind == "tlp" else small_q.sql()
                if save_to is not None:
                    note = (f"fuzz seed {seed} case {n} ({kind}) on {backend}: {detail[:300]}\n"
                            f"reproduce: python -m tests.fuzz sql --seed {seed} --start {n} --queries 1 "
                            f"--engines {backend}")
                    whole = small_q.sql() if kind == "tlp" else None
                    failure.saved = shrink.save(small_db, failure.shrunk_sql, f"s{seed}_c{n}_{backend}", note,
                                                save_to, whole=whole)
            run.failures.append(failure)
            break  # one shrink per case
        if progress is not None:
            progress(run)
    run.seconds = time.perf_counter() - began
    return run


def _shrink(kind: str, q: Query, p: str | None, db: Database, backend: str, workdir: Path) -> tuple[Database, Query]:
    counter = iter(range(10**6))

    def fails(d: Database, variant: Query) -> bool:
        data_dir = d.write(workdir / f"v{next(counter)}")
        return bool(_verdict(kind, variant, p, data_dir, d, [backend]).disagreements)

    return shrink.shrink(db, q, fails)
