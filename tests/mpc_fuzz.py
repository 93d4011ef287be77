"""A random multi-party query generator, checked against DuckDB on the
union of the parties' data (issue #15).

`session(seed, queries)` draws a random parties config (3-5 parties,
random table owners, random trust sets: private, public, or visible to
some parties; 1-2 recipients) with random data (NULLs in every column,
duplicate keys), and `queries` random queries over it (filters with
three-valued logic, UNION ALL of several parties' tables, joins, GROUP BY
with HAVING, DISTINCT, every aggregate). Each query is planned as
`musketeer mpc explain` does: refused (one line, a `MusketeerError`), or
run. The runnable ones run in one MPyC session, one OS process per party
(this file is also the party script: `python tests/mpc_fuzz.py INDEX
SESSION_DIR OUT`), and every recipient's answer is compared with DuckDB's.
A mid-protocol failure fails the whole session (its processes exit
non-zero): the generator's contract is "right, or refused at explain".
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

NAMES = ["ana", "bo", "cy", "di", "ed"]


@dataclass
class Outcome:
    seed: int
    parties: int
    planned: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (sql, reason)
    wrong: list[tuple[str, object, object]] = field(default_factory=list)  # (sql, got, want)
    ran: int = 0
    seconds: float = 0.0
    failure: str = ""  # a session that did not finish (mid-protocol failure)


def _config(rng: random.Random, directory: Path, ports: list[int]) -> tuple[Path, list[str]]:
    from tests.mpc_helpers import write_parties

    n = rng.randint(3, 5)
    parties = NAMES[:n]
    recipients = sorted(rng.sample(parties, rng.randint(1, 2)))
    nrng = np.random.default_rng(rng.randrange(2 ** 31))
    tables = {}
    for t in range(rng.randint(2, 4)):
        owner = rng.choice(parties)
        rows = rng.randint(3, 12)
        frame = pd.DataFrame({c: pd.Series(nrng.integers(lo, hi, rows), dtype="Int64").mask(nrng.random(rows) < 0.15)
                              for c, lo, hi in (("k", 0, 5), ("g", 0, 3), ("v", -5, 20))})
        visible = {}
        for c in ("k", "g", "v"):
            r = rng.random()
            if r < 0.35:
                visible[c] = ["*"]
            elif r < 0.65:
                visible[c] = sorted(rng.sample(parties, rng.randint(1, 2)))
        tables[f"t{t}"] = (owner, frame, {"k": "int64", "g": "int64", "v": "int64"}, visible)
    return write_parties(directory, parties, recipients, ports, tables), parties


def _pred(rng: random.Random, p: str = "") -> str:
    c = rng.randint(-2, 12)
    return rng.choice([
        f"{p}v > {c}", f"{p}v <= {c}", f"{p}v IS NULL", f"{p}v IS NOT NULL", f"NOT ({p}v > {c})",
        f"{p}k = {rng.randint(0, 4)} OR {p}v < {c}", f"{p}g IN (1, 2)", f"{p}v + {p}k > {c}",
        f"CASE WHEN {p}v > {c} THEN 1 ELSE 0 END = 1", f"COALESCE({p}v, 0) > {c}", f"{p}g <> {rng.randint(0, 2)}",
        f"{p}k = {p}g",
    ])


def _aggs(rng: random.Random, p: str = "") -> str:
    pool = ["COUNT(*)", f"COUNT({p}v)", f"SUM({p}v)", f"MIN({p}v)", f"MAX({p}v)", f"AVG({p}v)", f"SUM({p}k)"]
    return ", ".join(f"{a} AS a{i}" for i, a in enumerate(rng.sample(pool, rng.randint(1, 3))))


def _source(rng: random.Random, tables: list[str]) -> str:
    picked = rng.sample(tables, rng.randint(1, min(3, len(tables))))
    if len(picked) == 1:
        return picked[0]
    return "(" + " UNION ALL ".join(f"SELECT k, g, v FROM {t}" for t in picked) + ") u"


def query(rng: random.Random, tables: list[str]) -> str:
    kind = rng.choice(["global", "group", "group", "join", "join_group", "distinct"])
    where = f" WHERE {_pred(rng)}" if rng.random() < 0.5 else ""
    if kind == "global":
        return f"SELECT {_aggs(rng)} FROM {_source(rng, tables)}{where}"
    if kind == "group":
        having = f" HAVING {rng.choice(['COUNT(*) > 1', 'SUM(v) > 5', 'MAX(v) IS NOT NULL', 'COUNT(v) >= 2'])}" \
            if rng.random() < 0.4 else ""
        return f"SELECT g, {_aggs(rng)} FROM {_source(rng, tables)}{where} GROUP BY g{having}"
    if kind in ("join", "join_group"):
        a, b = rng.sample(tables, 2)
        on = rng.choice(["a.k = b.k", "a.k = b.k AND a.g = b.g", "a.g = b.g"])
        where = f" WHERE {_pred(rng, rng.choice(['a.', 'b.']))}" if rng.random() < 0.4 else ""
        if kind == "join":
            return f"SELECT {_aggs(rng, rng.choice(['a.', 'b.']))} FROM {a} a JOIN {b} b ON {on}{where}"
        return (f"SELECT a.g, {_aggs(rng, rng.choice(['a.', 'b.']))} FROM {a} a JOIN {b} b ON {on}{where} "
                f"GROUP BY a.g")
    col = rng.choice(["k", "g", "v"])
    return f"SELECT COUNT(*) AS n FROM (SELECT DISTINCT {col} FROM {_source(rng, tables)}{where}) d"


def _plain(frame: pd.DataFrame | None) -> dict | None:
    if frame is None:
        return None
    return {c: [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in frame[c]]
            for c in frame.columns}


def session(seed: int, queries: int, directory: Path, timeout: float = 900) -> Outcome:
    """One random config, `queries` random queries, one MPyC session."""
    from musketeer.ir import MusketeerError
    from musketeer.mpc.config import load_config
    from musketeer.mpc.launch import free_ports
    from musketeer.mpc_cli import plan_query
    from tests.mpc_helpers import cleartext_answer, run_parties, same_answer

    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    config_path, parties = _config(rng, directory, free_ports(5))
    config = load_config(str(config_path))
    out = Outcome(seed, len(parties))
    runnable: list[str] = []
    tables = sorted(config.tables)
    for _ in range(queries):
        sql = query(rng, tables)
        try:
            plan_query(sql, config)
        except MusketeerError as e:
            assert "\n" not in str(e), str(e)
            out.refused.append((sql, str(e)))
            continue
        runnable.append(sql)
    out.planned = len(runnable)
    (directory / "queries.json").write_text(json.dumps({"config": str(config_path), "queries": runnable}))
    if not runnable:
        return out
    start = time.perf_counter()
    try:
        results = run_parties(__file__, len(parties), [str(directory)], directory, timeout=timeout)
    except AssertionError as e:  # a party exited non-zero: mid-protocol failure
        out.failure = str(e)[-6000:]
        return out
    out.seconds = time.perf_counter() - start
    for i, sql in enumerate(runnable):
        want = cleartext_answer(sql, config)
        for idx, p in enumerate(parties):
            got = results[idx][i]
            if p not in config.recipients:
                assert got is None, (p, sql)
                continue
            frame = pd.DataFrame(got)
            if not same_answer(frame, want):
                out.wrong.append((sql, frame.to_dict(orient="list"), want.to_dict(orient="list")))
        out.ran += 1
    return out


def _party_main(index: int, directory: str, out_path: str) -> None:
    """One party: plan every query, run them in order in one session."""
    from musketeer.mpc.config import load_config
    from musketeer.mpc.runtime import _setup_mpyc, run_local
    from musketeer.mpc.secure.engine import Engine
    from musketeer.mpc.secure.relation import Channel
    from musketeer.mpc_cli import local_backend, plan_query

    spec = json.loads(Path(directory, "queries.json").read_text())
    config = load_config(spec["config"])
    me = config.names[index]
    plans = [plan_query(sql, config) for sql in spec["queries"]]
    mpc, _ = _setup_mpyc(config, me, False)
    results: list[dict | None] = []

    async def main() -> None:
        await mpc.start()
        for plan in plans:
            frames: dict[str, pd.DataFrame] = {}
            for stage in plan.local:
                if stage.party == me:
                    frames.update(run_local(stage, local_backend()))
            engine = Engine(mpc, Channel(mpc, config.names, me), plan)
            await engine.load_inputs(frames)
            await engine.run()
            frame = await engine.reveal(plan.reveal, list(plan.recipients))
            if frame is not None and plan.pushup is not None:
                tmp = Path(directory, f"revealed_{index}.parquet")
                frame.to_parquet(tmp, index=False)
                frame = run_local(plan.pushup, local_backend(), {"__revealed": str(tmp)})["result"]
            results.append(_plain(frame))
        await mpc.shutdown()

    mpc.run(main())
    with open(out_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    _party_main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
