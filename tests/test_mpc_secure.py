"""Oblivious secure operators (mpc/secure/) against DuckDB/pandas in the
clear, with 3 parties as 3 OS processes over TCP on 127.0.0.1.

One MPyC session runs every case: this file is also the per-party script
(`python tests/test_mpc_secure.py PARTY_INDEX CONFIG OUT`), which plans each
query with `--mpc-only` semantics (every column secret-shared, every
operator oblivious), runs the secure engine and writes what it revealed and
every cleartext value its channel received.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (SQL, ordered: the result order is part of the answer)
CASES: dict[str, tuple[str, bool]] = {
    "filter_sort": ("SELECT k, v FROM t0 WHERE v > 5 ORDER BY v DESC, k", True),
    "filter_compound": ("SELECT k, v FROM t2 WHERE v >= 0 AND (k = 1 OR k = 3)", False),
    "sort_agg": ("SELECT g, SUM(v) AS s, COUNT(*) AS c, MIN(v) AS mn, MAX(v) AS mx, AVG(v) AS a "
                 "FROM (SELECT g, v FROM t0 UNION ALL SELECT g, v FROM t2) u GROUP BY g", False),
    "sort_agg_two_keys": ("SELECT g, k, SUM(v) AS s, COUNT(*) AS c FROM t0 WHERE v < 15 GROUP BY g, k", False),
    "onehot_agg": ("SELECT c, SUM(v) AS s, COUNT(*) AS n, MAX(v) AS mx, MIN(v) AS mn, AVG(v) AS a FROM "
                   "(SELECT 1 AS c, v FROM t0 UNION ALL SELECT 2 AS c, v FROM t2 UNION ALL SELECT 3 AS c, w AS v "
                   "FROM t1) u GROUP BY c", False),
    "join": ("SELECT t0.k, t0.v, t1.w FROM t0 JOIN t1 ON t0.k = t1.k", False),
    "join_two_keys": ("SELECT t0.v, t2.v AS v2 FROM t0 JOIN t2 ON t0.k = t2.k AND t0.g = t2.g", False),
    "join_filter_agg_sort": ("SELECT t0.g, COUNT(*) AS n, SUM(t1.w) AS sw FROM t0 JOIN t1 ON t0.k = t1.k "
                             "WHERE t1.w < 50 GROUP BY t0.g ORDER BY t0.g", True),
    "join_agg_fused": ("SELECT t0.g, COUNT(*) AS n, SUM(t1.w) AS sw, AVG(t0.v) AS av FROM t0 JOIN t1 "
                       "ON t0.k = t1.k GROUP BY t0.g", False),
    "join_agg_fused_right_keys": ("SELECT t1.w, SUM(t0.v) AS sv, COUNT(*) AS n FROM t0 JOIN t1 ON t0.k = t1.k "
                                  "WHERE t0.v > 0 GROUP BY t1.w", False),
    "join_onehot_agg_fused": ("SELECT c, SUM(t1.w) AS sw, COUNT(*) AS n FROM (SELECT 1 AS c, k FROM t0 UNION ALL "
                              "SELECT 2 AS c, k FROM t2) u JOIN t1 ON u.k = t1.k GROUP BY c", False),
    "join_minmax_agg": ("SELECT t0.g, MIN(t1.w) AS mn, MAX(t1.w) AS mx FROM t0 JOIN t1 ON t0.k = t1.k "
                        "GROUP BY t0.g", False),  # MIN/MAX: the join is materialised (n*m rows)
    "global": ("SELECT SUM(v * 2 - 1) AS s, COUNT(*) AS n, MIN(v) AS mn FROM t2 WHERE k <> 2", False),
}

PARTIES = ("p0", "p1", "p2")
#: join -> SUM/COUNT/AVG aggregate keyed on one side: run on the match matrix
FUSED = {"join_agg_fused", "join_agg_fused_right_keys", "join_onehot_agg_fused", "join_filter_agg_sort"}


def _frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    return {
        "t0": pd.DataFrame({"k": rng.integers(0, 6, 12), "g": rng.integers(0, 3, 12), "v": rng.integers(-5, 21, 12)}),
        "t1": pd.DataFrame({"k": rng.integers(0, 6, 9), "w": rng.integers(0, 100, 9)}),
        "t2": pd.DataFrame({"k": rng.integers(0, 6, 8), "g": rng.integers(0, 3, 8), "v": rng.integers(-5, 21, 8)}),
    }


def _write_config(directory: str, ports: list[int]) -> str:
    owners = {"t0": "p0", "t1": "p1", "t2": "p2"}
    lines = ['recipients = ["p0", "p1", "p2"]', ""]
    for p, port in zip(PARTIES, ports):
        lines += ["[[party]]", f'name = "{p}"', 'host = "127.0.0.1"', f"port = {port}", ""]
    for t, frame in _frames().items():
        frame.to_csv(os.path.join(directory, f"{t}.csv"), index=False)
        cols = ", ".join(f'{c} = "int64"' for c in frame.columns)
        vis = ", ".join(f'{c} = ["*"]' for c in frame.columns)  # every result may go to every recipient
        lines += [f"[tables.{t}]", f'owner = "{owners[t]}"', f'path = "{t}.csv"', f"columns = {{ {cols} }}",
                  f"visible_to = {{ {vis} }}", ""]
    path = os.path.join(directory, "parties.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def _party_main(index: int, config_path: str, out_path: str) -> None:
    """One party: every case in one MPyC session (all parties in the same order)."""
    sys.path.insert(0, ROOT)
    from musketeer.mpc.config import load_config
    from musketeer.mpc.runtime import _setup_mpyc, run_local
    from musketeer.mpc_cli import local_backend
    from musketeer.mpc.secure.engine import Engine
    from musketeer.mpc.secure.relation import Channel
    from musketeer.mpc_cli import plan_query

    config = load_config(config_path)
    me = config.names[index]
    plans = {name: plan_query(sql, config, mpc_only=True) for name, (sql, _) in CASES.items()}
    mpc, _ = _setup_mpyc(config, me, False)
    results: dict[str, dict] = {}

    async def main() -> None:
        await mpc.start()
        for name, plan in plans.items():
            frames: dict[str, pd.DataFrame] = {}
            for stage in plan.local:
                if stage.party == me:
                    frames.update(run_local(stage, local_backend()))
            chan = Channel(mpc, config.names, me)
            engine = Engine(mpc, chan, plan)
            await engine.load_inputs(frames)
            await engine.run()
            frame = await engine.reveal(plan.reveal, list(plan.recipients))
            results[name] = {
                "result": frame.to_dict(orient="list"),
                "received": [[label, np.asarray(v, dtype=float).ravel().tolist()] for label, v in chan.received],
                "allowed": {p: [leak.text for leak in plan.leakage(p)] for p in config.names},
                "kinds": sorted({leak.kind for leak in plan.leaks}),
            }
        await mpc.shutdown()

    mpc.run(main())
    with open(out_path, "w") as f:
        json.dump(results, f)


@pytest.fixture(scope="module")
def secure_run(tmp_path_factory):
    from musketeer.mpc.launch import free_ports

    d = tmp_path_factory.mktemp("secure_ops")
    config = _write_config(str(d), free_ports(3))
    from tests.mpc_helpers import run_parties

    # one-hot GROUP BYs in blocks of 8 rows: the 29-row case folds 4 blocks
    return run_parties(__file__, 3, [config], d, env={"MUSKETEER_MPC_BLOCK": "8"})


def _oracle(sql: str) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    for t, frame in _frames().items():
        con.register(t, frame)
    return con.execute(sql).df()


def _close(got: pd.DataFrame, want: pd.DataFrame, ordered: bool) -> None:
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want), (got, want)
    if not ordered:
        got = got.sort_values(list(got.columns)).reset_index(drop=True)
        want = want.sort_values(list(want.columns)).reset_index(drop=True)
    np.testing.assert_allclose(got.astype(float).to_numpy(), want.astype(float).to_numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_oblivious_operator_matches_duckdb(secure_run, case):
    sql, ordered = CASES[case]
    want = _oracle(sql)
    assert len(want) > 0  # the data exercise the case
    for i, out in enumerate(secure_run):  # every party is a recipient here
        got = pd.DataFrame(out[case]["result"])
        _close(got, want, ordered)


@pytest.mark.slow
def test_mpc_only_leaks_only_sizes_and_result(secure_run):
    """Every value a party's channel received is an input size or the
    result (by the plan's labels), and the plan lists nothing else."""
    for i, out in enumerate(secure_run):
        me = PARTIES[i]
        for case, res in out.items():
            assert set(res["kinds"]) <= {"size", "nulls", "output"}, (case, res["kinds"])
            allowed = set(res["allowed"][me])
            for label, value in res["received"]:
                assert label in allowed, (case, label)
                if label.startswith("row count"):
                    assert len(value) == 1


def test_plan_modes_are_oblivious(tmp_path):
    """--mpc-only plans: no public/hybrid step, no STP, no push-up; literal
    group keys get a one-hot over their public domain, others a sort."""
    from musketeer.mpc.config import load_config
    from musketeer.mpc_cli import plan_query

    config = load_config(_write_config(str(tmp_path), [19501, 19502, 19503]))
    for name, (sql, _) in CASES.items():
        plan = plan_query(sql, config, mpc_only=True)
        assert plan.pushup is None and all(st.workflow.ops()[0].opname == "Scan" for st in plan.local)
        assert {s.mode for s in plan.secure} <= {"elementwise", "concat", "oblivious", "global", "cross"}
        assert all(s.stp is None for s in plan.secure)
        aggs = [s for s in plan.secure if s.op.opname == "Aggregate" and s.op.keys]
        if name == "onehot_agg":
            assert aggs[0].domain == ((1,), (2,), (3,))
        elif name == "join_onehot_agg_fused":
            assert aggs[0].domain == ((1,), (2,))
        elif aggs:
            assert aggs[0].domain is None
        fused = {s.op.opname for s in plan.secure if s.fused}
        assert fused == ({"Join", "Aggregate"} if name in FUSED else set()), name
    text = plan_query(CASES["onehot_agg"][0], config, mpc_only=True).to_text()
    assert "one-hot over 3 public keys" in text


def _run_scenario(tmp_path, name: str, rows: int) -> None:
    from musketeer.mpc.config import load_config
    from musketeer.mpc.examples.data import SCENARIOS, write_scenario
    from musketeer.mpc.launch import free_ports, run_all
    from tests.mpc_helpers import cleartext_answer

    path = write_scenario(name, str(tmp_path / name), rows, free_ports(3))
    query = os.path.join(os.path.dirname(path), "query.sql")
    runs = run_all(query, path, list(SCENARIOS[name].parties), mpc_only=True, timeout=600)
    for r in runs.values():
        assert r.returncode == 0, r.stderr
    config = load_config(path)
    want = cleartext_answer(query, config)
    for rec in config.recipients:
        got = pd.read_csv(io.StringIO(runs[rec].stdout), sep=r"\s+")
        _close(got, want, ordered=True)


@pytest.mark.slow
@pytest.mark.parametrize("name,rows", [("hhi", 20), ("credit", 5)])
def test_mpc_only_scenarios_give_the_cleartext_answer(tmp_path, name, rows):
    _run_scenario(tmp_path, name, rows)


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    _party_main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
