"""Cost model: cardinality vs true counts, planner DP vs exhaustive search,
and a mixed plan that runs (stage cutting) and gives DuckDB's answer."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musketeer.backends.base import RunOptions
from musketeer.backends.local import BACKEND
from musketeer.cost_model import Cardinality, Profile, plan
from musketeer.cost_model.costs import default_profiles, load_profile, save_profile
from musketeer.cost_model.planner import CostModel, dp_assign, exhaustive_assign
from musketeer.cost_model.stats import clear_caches, gee_ndv
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.expr import AggCall
from musketeer.ir.types import INT64, STRING
from musketeer.ir.workflow import Workflow
from musketeer import api
from musketeer.autoplan import run_auto, static_stages
from tests import tpch


def _scan(path: Path, cols: dict) -> O.Scan:
    return O.Scan("t" + path.stem, str(path), "parquet",
                  tuple(O.ScanColumn(n, n, t) for n, t in cols.items()))


@pytest.fixture()
def facts(tmp_path: Path) -> tuple[Path, Path]:
    """f: 20 000 rows, k in 0..99 (uniform), v 0..19999, s 'a'/'b'; d: 100 rows keyed by k."""
    clear_caches()
    n = 20_000
    f = tmp_path / "f.parquet"
    pq.write_table(pa.table({"k": [i % 100 for i in range(n)], "v": list(range(n)),
                             "s": ["a" if i % 4 else "b" for i in range(n)]}), f)
    d = tmp_path / "d.parquet"
    pq.write_table(pa.table({"dk": list(range(100)), "name": [f"n{i}" for i in range(100)]}), d)
    return f, d


def _within(est: float, true: float, factor: float = 1.5) -> bool:
    return true / factor <= est <= true * factor


def test_cardinality_matches_true_counts(facts) -> None:
    f, d = facts
    fs = _scan(f, {"k": INT64, "v": INT64, "s": STRING})
    ds = _scan(d, {"dk": INT64, "name": STRING})
    eq = O.Filter(fs, E.Compare("=", E.Col("k"), E.Lit.of(7)))  # true: 200
    rng = O.Filter(fs, E.Compare("<", E.Col("v"), E.Lit.of(5000)))  # true: 5000
    inl = O.Filter(fs, E.InList(E.Col("k"), (E.Lit.of(1), E.Lit.of(2), E.Lit.of(3))))  # 600
    both = O.Filter(fs, E.And((E.Compare("=", E.Col("k"), E.Lit.of(7)),
                               E.Compare("<", E.Col("v"), E.Lit.of(10000)))))  # 100
    either = O.Filter(fs, E.Or((E.Compare("=", E.Col("k"), E.Lit.of(7)),
                                E.Compare("=", E.Col("k"), E.Lit.of(8)))))  # 400
    neg = O.Filter(fs, E.Not(E.Compare("=", E.Col("k"), E.Lit.of(7))))  # 19800
    join = O.Join(fs, ds, "inner", ("k",), ("dk",))  # 20000
    semi = O.Join(ds, eq, "semi", ("dk",), ("k",))  # 1
    agg = O.Aggregate(fs, ("k",), (("n", AggCall("count_star")),))  # 100
    glob = O.Aggregate(fs, (), (("n", AggCall("count_star")),))  # 1
    like = O.Filter(fs, E.Like(E.Col("s"), "b%"))  # 5000 (rule of thumb only)
    cases = {eq: 200, rng: 5000, inl: 600, both: 100, either: 400, neg: 19800, join: 20000,
             agg: 100, glob: 1, fs: 20000}
    wf = Workflow(tuple(O.Sink(op, f"o{i}") for i, op in enumerate([*cases, semi, like])))
    card = Cardinality(wf)
    for op, true in cases.items():
        assert _within(card.rows(op), true), (op.opname, card.rows(op), true)
    assert card.rows(semi) <= 100
    assert 0 < card.rows(like) < 20000
    assert card[fs].row_bytes > 8


def test_gee_ndv_keys_and_flags() -> None:
    assert gee_ndv(1000, 1000, 1000, 1_000_000) == 1_000_000  # all unique: a key
    assert gee_ndv(0, 2, 1000, 1_000_000) == 2  # a flag
    assert gee_ndv(5, 5, 5, 5) == 5


def test_loop_iterations_from_max_iter(facts) -> None:
    f, _ = facts
    fs = _scan(f, {"k": INT64, "v": INT64, "s": STRING})
    var = O.LoopVar("x", fs.schema)
    loop = O.While((fs,), ("x",), (O.Filter(var, E.Compare(">", E.Col("v"), E.Lit.of(0))),), "x", max_iter=7)
    card = Cardinality(Workflow((O.Sink(loop, "result"),)))
    assert card.loops[id(loop)].iterations == 7
    assert card.rows(loop) == 20000


def test_loop_cost_charges_stages_and_loop_rows_per_iteration(facts) -> None:
    """A loop pays, every iteration, its body operators plus a fixed cost per
    stage (one per exchange: here a join and an aggregate) plus a cost per
    loop-variable row; the LoopVar itself is no work."""
    from musketeer.cost_model.costs import body_stages, loop_seconds, op_seconds

    f, d = facts
    fs = _scan(f, {"k": INT64, "v": INT64, "s": STRING})
    ds = _scan(d, {"dk": INT64, "name": STRING})
    var = O.LoopVar("x", ds.schema)
    step = O.Aggregate(O.Join(var, fs, "inner", ("dk",), ("k",)), ("dk",), (("name", AggCall("max", "s")),))
    loop = O.While((ds,), ("x",), (step,), "x", max_iter=6)
    card = Cardinality(Workflow((O.Sink(loop, "result"),)))
    est = card.loops[id(loop)]
    assert body_stages(est.ops) == 2
    base = dataclasses.replace(default_profiles()["local"], loop_overhead=0.0, loop_stage_overhead=0.0, loop_row=0.0)
    plain = loop_seconds(base, loop, card)
    body = sum(op_seconds(base, b, card) for b in est.ops if not isinstance(b, O.LoopVar))
    assert plain == pytest.approx(6 * body)
    staged = dataclasses.replace(base, loop_stage_overhead=0.5)
    assert loop_seconds(staged, loop, card) == pytest.approx(plain + 6 * 2 * 0.5)
    per_row = dataclasses.replace(base, loop_row=1e-3)
    assert loop_seconds(per_row, loop, card) == pytest.approx(plain + 6 * card[var].rows * 1e-3)
    assert card[var].rows == 100


def _mixed_profile() -> Profile:
    """local2 joins and aggregates almost for free but scans slowly: the
    cheapest plan scans on local and joins on local2."""
    base = default_profiles()["local"]
    return Profile({
        "local": dataclasses.replace(base, startup=0.0, rates={**base.rates, "join": 1e-5, "aggregate": 1e-5}),
        "local2": dataclasses.replace(base, startup=0.0, read_byte=0.0, write_byte=0.0,
                                      rates={**base.rates, "join": 1e-9, "aggregate": 1e-9, "scan": 1e-5}),
    }, "test")


def test_dp_picks_mixed_plan_and_agrees_with_exhaustive(facts) -> None:
    f, d = facts
    fs = _scan(f, {"k": INT64, "v": INT64, "s": STRING})
    ds = _scan(d, {"dk": INT64, "name": STRING})
    filt = O.Filter(fs, E.Compare("<", E.Col("v"), E.Lit.of(15000)))
    join = O.Join(filt, ds, "inner", ("k",), ("dk",))
    agg = O.Aggregate(join, ("name",), (("n", AggCall("count_star")),))
    wf = Workflow((O.Sink(agg, "result"),))
    card = Cardinality(wf)
    model = CostModel(wf, card, _mixed_profile(), ["local", "local2"])
    dp_cost, dp_assign_ = dp_assign(model)
    ex_cost, _ = exhaustive_assign(model)
    assert math.isclose(dp_cost, ex_cost)
    assert math.isclose(model.objective(dp_assign_), dp_cost)
    p = plan(wf, card, _mixed_profile(), ["local", "local2"], exhaustive=False)
    assert p.backends == ["local", "local2"]
    assert p.assignment[id(join)] == "local2" and p.assignment[id(filt)] == "local"
    # With equal engines nothing is gained by cutting: one stage.
    same = plan(wf, card, Profile(), ["local", "dask"])
    assert len(same.stages) == 1


def test_stage_estimates_add_up_to_the_plan_total(facts) -> None:
    """Each engine's start-up is in exactly one stage's estimate, also when
    the stage first charged it held only a Scan that a later stage re-reads
    (it was dropped, and its engine's start-up went with it)."""
    f, d = facts
    fs = _scan(f, {"k": INT64, "v": INT64, "s": STRING})
    ds = _scan(d, {"dk": INT64, "name": STRING})
    filt = O.Filter(fs, E.Compare("<", E.Col("v"), E.Lit.of(15000)))
    join = O.Join(filt, ds, "inner", ("k",), ("dk",))
    agg = O.Aggregate(join, ("name",), (("n", AggCall("count_star")),))
    wf = Workflow((O.Sink(agg, "result"),))
    profile = _local_dask_profile()
    for name in profile.backends:
        profile.backends[name] = dataclasses.replace(profile.backends[name], startup=0.5)
    p = plan(wf, Cardinality(wf), profile, ["local", "dask"])
    assert p.backends == ["local", "dask"]
    assert math.isclose(sum(s.estimate for s in p.stages), p.total, rel_tol=1e-9)
    assert all(s.estimate >= 0.5 for s in p.stages)  # each engine used once: each stage pays its start-up


def test_dp_matches_exhaustive_on_random_profiles(facts) -> None:
    import random

    f, d = facts
    fs = _scan(f, {"k": INT64, "v": INT64, "s": STRING})
    ds = _scan(d, {"dk": INT64, "name": STRING})
    j1 = O.Join(fs, ds, "inner", ("k",), ("dk",))
    a1 = O.Aggregate(j1, ("k",), (("n", AggCall("count_star")),))
    j2 = O.Join(a1, ds, "left", ("k",), ("dk",))  # ds is shared: a DAG, not a tree
    wf = Workflow((O.Sink(j2, "result"), O.Sink(a1, "side")))
    card = Cardinality(wf)
    rng = random.Random(7)
    base = default_profiles()["local"]
    for _ in range(25):
        prof = Profile({name: dataclasses.replace(
            base, startup=rng.uniform(0, 0.01), read_byte=rng.uniform(0, 1e-8), write_byte=rng.uniform(0, 1e-8),
            rates={k: v * rng.choice([1e-3, 1, 1e3]) for k, v in base.rates.items()})
            for name in ("a", "b", "c")})
        model = CostModel(wf, card, prof, ["a", "b", "c"])
        assert math.isclose(dp_assign(model)[0], exhaustive_assign(model)[0], rel_tol=1e-9)


@pytest.mark.parametrize("query", [3, 5, 22])
def test_mixed_plan_runs_and_matches_duckdb(query, tpch_data_dir, tpch_query_file, tpch_expected, tmp_path) -> None:
    wf = api.plan_workflow(tpch_query_file(query), data_dir=str(tpch_data_dir))
    engines = {"local": BACKEND, "local2": BACKEND}
    run = run_auto(wf, engines, _mixed_profile(), RunOptions(), directory=str(tmp_path))
    assert {s.backend for s in run.stages} == {"local", "local2"}
    tpch.assert_query_result(run.outputs["result"], tpch_expected(query), tpch.queries()[query])
    # The static cut (compile -o DIR) has the same stages as the first plan.
    assert len(static_stages(wf, run.first_plan, str(tmp_path))) == len(run.first_plan.stages)


def test_profile_round_trip_and_errors(tmp_path, monkeypatch) -> None:
    prof = _mixed_profile()
    path = save_profile(prof, tmp_path / "sub" / "profile.json")
    loaded = load_profile(path)
    assert loaded.get("local2").rates["join"] == 1e-9
    assert loaded.get("spark").startup == default_profiles()["spark"].startup  # defaults fill gaps
    (tmp_path / "p.toml").write_text('version = 1\n[backends.local]\nstartup = 0.5\n')
    assert load_profile(tmp_path / "p.toml").get("local").startup == 0.5
    monkeypatch.setenv("MUSKETEER_PROFILE", str(tmp_path / "missing.json"))
    from musketeer.ir.types import MusketeerError
    with pytest.raises(MusketeerError, match="does not exist"):
        load_profile()
    (tmp_path / "bad.json").write_text('{"backends": {"local": {"startup": -1}}}')
    with pytest.raises(MusketeerError, match="non-negative"):
        load_profile(tmp_path / "bad.json")


def test_compile_auto_writes_stage_programs_and_driver(tpch_data_dir, tpch_query_file, tpch_expected,
                                                       tmp_path, monkeypatch) -> None:
    """A mixed plan compiled to a directory runs with `python run_plan.py`."""
    import subprocess
    import sys

    import pandas as pd

    from musketeer import autoplan
    from musketeer.autoplan import compile_auto

    real = api.get_backend
    monkeypatch.setattr(api, "get_backend",
                        lambda name="auto", options=None: BACKEND if name == "local2" else real(name, options))
    monkeypatch.setattr(autoplan, "CANDIDATES", ("local", "local2"))
    wf = api.plan_workflow(tpch_query_file(3), data_dir=str(tpch_data_dir))
    out = tmp_path / "plan"
    out.mkdir()
    files = compile_auto(wf, _mixed_profile(), str(out))
    for path, text in files.items():
        Path(path).write_text(text)
    stages = sorted(p.name for p in out.glob("stage_*.py"))
    assert len(stages) >= 2 and any("local2" in s for s in stages)
    done = subprocess.run([sys.executable, str(out / "run_plan.py"), "--output", str(tmp_path / "r.parquet")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    tpch.assert_query_result(pd.read_parquet(tmp_path / "r.parquet"), tpch_expected(3), tpch.queries()[3])


def _local_dask_profile() -> Profile:
    """A test profile that forces a local + dask plan: local scans and
    filters almost for free but projects, joins, aggregates and sorts slowly; dask
    is the opposite. Startup and transfer cost nothing."""
    base = default_profiles()["local"]
    return Profile({
        "local": dataclasses.replace(base, startup=0.0, read_byte=0.0, write_byte=0.0,
                                     rates={**base.rates, "join": 1e-4, "aggregate": 1e-4, "sort": 1e-4,
                                            "limit": 1e-4, "sink": 1e-4, "project": 1e-4}),
        "dask": dataclasses.replace(base, startup=0.0, read_byte=0.0, write_byte=0.0, memory_bytes=None,
                                    rates={**base.rates, "join": 1e-9, "aggregate": 1e-9, "sort": 1e-9,
                                           "limit": 1e-9, "sink": 1e-9, "project": 1e-9, "scan": 1e-4, "filter": 1e-4}),
    }, "test")


@pytest.mark.parametrize("query", [3])
def test_local_plus_dask_plan_matches_duckdb(query, tpch_data_dir, tpch_query_file, tpch_expected, tmp_path,
                                             monkeypatch) -> None:
    """Two real engines in one plan: local stages hand Parquet files to dask
    stages. run_auto (with re-planning) and the compiled stage programs run
    by `python run_plan.py` both give DuckDB's answer."""
    import subprocess
    import sys

    import pandas as pd

    from musketeer import autoplan
    from musketeer.autoplan import compile_auto

    dask = api.get_backend("dask")
    wf = api.plan_workflow(tpch_query_file(query), data_dir=str(tpch_data_dir))
    run = run_auto(wf, {"local": BACKEND, "dask": dask}, _local_dask_profile(), RunOptions(),
                   directory=str(tmp_path))
    assert {s.backend for s in run.stages} == {"local", "dask"}
    tpch.assert_query_result(run.outputs["result"], tpch_expected(query), tpch.queries()[query])

    monkeypatch.setattr(autoplan, "CANDIDATES", ("local", "dask"))
    out = tmp_path / "plan"
    out.mkdir()
    files = compile_auto(wf, _local_dask_profile(), str(out))
    for path, text in files.items():
        Path(path).write_text(text)
    stages = sorted(p.name for p in out.glob("stage_*.py"))
    assert any(s.endswith("_local.py") for s in stages) and any(s.endswith("_dask.py") for s in stages), stages
    done = subprocess.run([sys.executable, str(out / "run_plan.py"), "--output", str(tmp_path / "r.parquet")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    tpch.assert_query_result(pd.read_parquet(tmp_path / "r.parquet"), tpch_expected(query), tpch.queries()[query])


def test_pagerank_loop_estimates_follow_vertex_keys(tmp_path: Path) -> None:
    """Vertex ids stay unique through PageRank's Distinct, joins with
    per-vertex aggregates and the cross join with the vertex count, so the
    loop carries ~N rows and each iteration's edge join yields ~E rows (not
    E x N / (N/10) as with unknown distinct counts)."""
    from musketeer import pagerank, read

    clear_caches()
    n = 1000
    edges = tmp_path / "edges.parquet"
    pq.write_table(pa.table({"src": [i for i in range(n) for _ in (1, 7)],
                             "dst": [(i + k) % n for i in range(n) for k in (1, 7)]}), edges)
    wf = pagerank(read(edges), tol=1e-8, max_iter=100).workflow()
    card = Cardinality(wf)
    (loop,) = card.loops.values()
    assert loop.iterations == 20  # data-dependent stop: min(max_iter, 20)
    var = next(op for op in loop.ops if isinstance(op, O.LoopVar))
    assert _within(card.rows(var), n)
    first_join = next(op for op in loop.ops if isinstance(op, O.Join) and op.left_keys)
    assert _within(card.rows(first_join), 2 * n)
