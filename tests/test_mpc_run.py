"""Joint queries as 3 OS processes over TCP on 127.0.0.1: exact cleartext
answers, what each process receives in the clear, and peer failures."""

from __future__ import annotations

import json
import os
import signal
import time

import pandas as pd
import pytest

from musketeer.mpc.config import load_config
from musketeer.mpc.examples.data import SCENARIOS, write_scenario
from musketeer.mpc.launch import free_ports, launch, run_all, wait_all
from tests.mpc_helpers import cleartext_answer, same_answer
from musketeer.mpc_cli import plan_query


def _setup(tmp_path, name: str, rows: int):
    path = write_scenario(name, str(tmp_path / name), rows, free_ports(3))
    return path, os.path.join(os.path.dirname(path), "query.sql"), list(SCENARIOS[name].parties)


def _result(stdout: str, want):
    import io

    import pandas as pd

    return pd.read_csv(io.StringIO(stdout), sep=r"\s+")


def _check_answer(tmp_path, name: str, rows: int, mpc_only: bool = False, record: bool = False,
                  sql: str | None = None, env: dict[str, str] | None = None, sort_by: str | None = None):
    """Run scenario `name` (or `sql` over its tables) as 3 processes, with
    `env` added for every party; each recipient gets the cleartext answer
    (rows compared in `sort_by` order when the query has no ORDER BY).
    Returns (config, query path, parties, the cleartext answer)."""
    config_path, query, parties = _setup(tmp_path, name, rows)
    if sql is not None:
        with open(query, "w") as f:
            f.write(sql)
    envs = {p: {**(env or {}), **({"MUSKETEER_MPC_RECORD": str(tmp_path / f"{p}.json")} if record else {})}
            for p in parties}
    runs = run_all(query, config_path, parties, mpc_only=mpc_only, env=envs, timeout=600)
    for r in runs.values():
        assert r.returncode == 0, r.stderr
    config = load_config(config_path)
    want = cleartext_answer(query, config)
    for rec in config.recipients:
        got = _result(runs[rec].stdout, want)
        if sort_by is not None:
            got, want = (f.sort_values(sort_by).reset_index(drop=True) for f in (got, want))
        assert same_answer(got, want), (got, want)
    for p in parties:
        if p not in config.recipients:
            assert "not a recipient" in runs[p].stdout
    return config, query, parties, want


def _check_report_against_trust(plan, config):
    """Every column the leakage report lets a party see in the clear is one
    its trust set allows (public columns, STP keys), and row-level output
    values go only to recipients the trust sets allow."""
    from musketeer.mpc.trust import allows

    by_ref = {ref: op_id for op_id, ref in plan.ref.items()}
    for p in config.names:
        for leak in plan.leakage(p):
            if not leak.columns:
                assert leak.kind in ("size", "nulls", "pad"), leak
                continue
            rel = plan.info[by_ref[leak.op]]
            for c in leak.columns:
                col = rel.cols[c]
                if leak.kind in ("public", "stp") or col.lineage:
                    assert allows(col.trust, p), (p, leak.text, c, col.trust)


def test_public_join_three_processes(tmp_path):
    _check_answer(tmp_path, "patients", 40)


def test_received_values_match_leakage_report(tmp_path):
    """Every cleartext value a process received (recorded by the runtime's
    channel) is one the plan's leakage report lists for that party."""
    config, query, parties, _ = _check_answer(tmp_path, "patients", 30, record=True)
    with open(query) as f:
        plan = plan_query(f.read(), config)
    for p in parties:
        with open(tmp_path / f"{p}.json") as f:
            got = {label for label, _ in json.load(f)}
        allowed = {leak.text for leak in plan.leakage(p)}
        assert got <= allowed, (p, got - allowed)
        assert not any(label.startswith("UNPLANNED") for label in got)
    _check_report_against_trust(plan, config)


def test_public_group_avg(tmp_path):
    """AVG grouped by public keys over unfiltered rows: the group sizes are
    public, so the secure stage multiplies by 1/size instead of dividing."""
    sql = ("SELECT a.pid, AVG(c.diag) AS avg_diag, COUNT(*) AS n FROM visits_a a "
           "CROSS JOIN (SELECT diag FROM visits_c WHERE pid < 20) c GROUP BY a.pid")
    config, _, _, want = _check_answer(tmp_path, "patients", 30, sql=sql, sort_by="pid")
    agg = next(s for s in plan_query(sql, config).secure if s.op.opname == "Aggregate")
    assert agg.mode == "public"
    assert len(want) > 1 and want["n"].min() > 1  # the data exercise group sizes other than 1


@pytest.mark.slow
def test_credit_hybrid_join_and_aggregation_records(tmp_path):
    config, query, parties, _ = _check_answer(tmp_path, "credit", 60, record=True)
    with open(query) as f:
        plan = plan_query(f.read(), config)
    for p in parties:
        with open(tmp_path / f"{p}.json") as f:
            got = json.load(f)
        allowed = {leak.text for leak in plan.leakage(p)}
        assert {label for label, _ in got} <= allowed
        pads = {leak.text for leak in plan.leakage(p) if leak.kind == "pad"}
        nulls = {leak.text for leak in plan.leakage(p) if leak.kind == "nulls"}
        if p != "regulator":  # banks learn sizes (single integers), one has-NULLs bit per input column,
            # and bank_c the gather's random pads
            assert all(isinstance(v, int) for label, v in got if label not in pads | nulls)
            assert all(isinstance(b, bool) for label, v in got if label in nulls for b in v)
        if pads:  # the padded gather ran (3 parties): its values never repeat a score in the clear
            scores = set(pd.concat([pd.read_csv(os.path.join(os.path.dirname(query), f"scores_{b}.csv"))
                                    for b in "bc"])["score"])
            padded = [v for label, vals in got if label in pads and "one-time" in label for v in vals]
            assert padded and not set(padded) & scores
    assert {leak.party for leak in plan.leaks if leak.kind == "pad"} == {"regulator", "bank_c"}
    _check_report_against_trust(plan, config)


SORTED_AGGREGATES = {
    "avg_unfiltered": None,  # the scenario's query: AVG by zip, 1/size from the STP
    "every_aggregate": (
        "WITH scores AS (SELECT ssn, score FROM scores_b UNION ALL SELECT ssn, score FROM scores_c)\n"
        "SELECT r.zip, AVG(s.score) AS a, MIN(s.score) AS lo, MAX(s.score) AS hi, COUNT(*) AS n, "
        "SUM(s.score) AS total, MIN(s.score * 2 - 1) AS lo2 FROM zips r JOIN scores s ON r.ssn = s.ssn "
        "GROUP BY r.zip ORDER BY r.zip"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SORTED_AGGREGATES))
def test_hybrid_aggregation_sorted_through_the_gather(tmp_path, monkeypatch, case):
    """A hybrid GROUP BY whose one-hot would be too large (here: any, the
    limit set to 0) sorts the rows by group through the padded gather: the
    answer is the cleartext one, and the pads were received as reported."""
    monkeypatch.setenv("MUSKETEER_MPC_ONEHOT_MAX", "0")  # this process's plan and every party's
    config, query, parties, want = _check_answer(tmp_path, "credit", 40, record=True, sql=SORTED_AGGREGATES[case],
                                                 env={"MUSKETEER_MPC_ONEHOT_MAX": "0"})
    assert len(want) > 1
    with open(query) as f:
        plan = plan_query(f.read(), config)
    for p in parties:
        with open(tmp_path / f"{p}.json") as f:
            got = {label for label, _ in json.load(f)}
        assert got <= {leak.text for leak in plan.leakage(p)}, (p, got)
        if p in ("regulator", "bank_c"):
            assert any("hybrid aggregation" in label for label in got)  # the sorted path ran


@pytest.mark.slow
def test_credit_with_five_parties_uses_the_one_hot_selection(tmp_path):
    """Five parties (two auditors holding nothing): MPyC's threshold is 2,
    so two parties may collude and the padded gather does not apply; the
    hybrid join falls back to the STP's secret one-hot and still answers."""
    config_path, query, parties = _setup(tmp_path, "credit", 30)
    with open(config_path) as f:
        text = f.read()
    extra = ["auditor_1", "auditor_2"]
    blocks = [f'[[party]]\nname = "{p}"\nhost = "127.0.0.1"\nport = {port}\n'
              for p, port in zip(extra, free_ports(2))]
    text = text.replace("[tables.", "\n".join(blocks) + "\n[tables.", 1)
    with open(config_path, "w") as f:
        f.write(text)
    config = load_config(config_path)
    with open(query) as f:
        plan = plan_query(f.read(), config)
    assert not [leak for leak in plan.leaks if leak.kind == "pad"]
    runs = run_all(query, config_path, parties + extra, timeout=600)
    assert all(r.returncode == 0 for r in runs.values()), [r.stderr[-500:] for r in runs.values()]
    want = cleartext_answer(query, config)
    assert same_answer(_result(runs["regulator"].stdout, want), want)


@pytest.mark.slow
def test_hhi(tmp_path):
    _check_answer(tmp_path, "hhi", 200)


@pytest.mark.slow
def test_mpc_only_baseline_same_answer(tmp_path):
    _check_answer(tmp_path, "hhi", 20, mpc_only=True)


def test_missing_party_times_out_cleanly(tmp_path):
    config_path, query, parties = _setup(tmp_path, "patients", 10)
    start = time.monotonic()
    out = tmp_path / "result.csv"
    runs = wait_all(launch(query, config_path, parties[:2], extra=["--timeout", "5", "--output", str(out)]),
                    timeout=60)
    assert time.monotonic() - start < 30
    for r in runs.values():
        assert r.returncode == 3 and "aborting, no output" in r.stderr and r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_party_killed_mid_protocol(tmp_path):
    """A party killed while the secure stages run: the others stop within
    30 s with one clear line (exit 3), and write no output file."""
    config_path, query, parties = _setup(tmp_path, "credit", 40)
    out = tmp_path / "result.csv"
    procs = launch(query, config_path, parties, mpc_only=True, extra=["--progress", "--output", str(out)])
    victim = procs[parties[1]]
    for line in victim.stderr:  # wait until it is inside the protocol
        if "secure stages running" in line:
            break
    assert victim.poll() is None
    victim.send_signal(signal.SIGKILL)
    start = time.monotonic()
    runs = wait_all({p: procs[p] for p in (parties[0], parties[2])}, timeout=60)
    assert time.monotonic() - start < 30
    for r in runs.values():
        assert r.returncode == 3
        errors = [ln for ln in r.stderr.splitlines() if "party " in ln and "aborting" in ln]
        assert len(errors) == 1 and "disconnected mid-protocol" in errors[0], r.stderr
        assert "avg_score" not in r.stdout
    assert not out.exists() and not list(tmp_path.glob("result.csv*"))  # no partial or temporary file
    victim.wait()


def test_party_crashing_at_the_final_barrier(tmp_path):
    """A party that dies after the secure stages but before the barrier
    (fault injected): the others stop within 30 s, one line, no output."""
    config_path, query, parties = _setup(tmp_path, "patients", 20)
    out = tmp_path / "result.csv"
    env = {parties[1]: {"MUSKETEER_MPC_FAULT": "before-barrier"}}
    start = time.monotonic()
    runs = wait_all(launch(query, config_path, parties, extra=["--output", str(out)], env=env), timeout=120)
    assert runs[parties[1]].returncode == 70
    for p in (parties[0], parties[2]):
        r = runs[p]
        assert r.returncode == 3 and r.stdout == "", r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "hosp_b" in r.stderr and "aborting" in r.stderr
    assert time.monotonic() - start < 60  # startup + at most BARRIER_GRACE after the crash
    assert not out.exists()
