"""Conclave split: golden plans per pass, trust refusals, config errors."""

from __future__ import annotations

import os

import pytest

from musketeer.mpc.config import ConfigError, load_config
from musketeer.mpc.examples.data import write_scenario
from musketeer.mpc.split import LeakRefused
from musketeer.mpc_cli import plan_query
from musketeer.cli import main

GOLDEN = os.path.join(os.path.dirname(__file__), "mpc_golden")


def _scenario(tmp_path, name: str):
    path = write_scenario(name, str(tmp_path / name), 10, [19101, 19102, 19103])
    with open(os.path.join(os.path.dirname(path), "query.sql")) as f:
        return load_config(path), f.read(), path


@pytest.mark.parametrize("name", ["hhi", "credit", "patients"])
def test_golden_split_plans(tmp_path, name):
    """hhi: push-down (pre-aggregation) + public aggregation; credit: hybrid
    join + hybrid aggregation + push-up of ORDER BY; patients: public join."""
    config, sql, _ = _scenario(tmp_path, name)
    text = plan_query(sql, config).to_text()
    golden = os.path.join(GOLDEN, f"{name}.txt")
    if os.environ.get("MUSKETEER_UPDATE_GOLDEN"):
        with open(golden, "w") as f:
            f.write(text)
    with open(golden) as f:
        assert text == f.read()


def test_credit_modes_and_leaks(tmp_path):
    config, sql, _ = _scenario(tmp_path, "credit")
    plan = plan_query(sql, config)
    modes = {s.op.opname: (s.mode, s.stp) for s in plan.secure}
    assert modes["Join"] == ("hybrid", "regulator") and modes["Aggregate"] == ("hybrid", "regulator")
    assert plan.pushup is not None
    # banks never see a key or a score in the clear: only sizes, and bank_c
    # the padded gather's random pads and positions (no column behind them)
    assert {leak.kind for leak in plan.leakage("bank_b")} == {"size", "nulls"}
    assert {leak.kind for leak in plan.leakage("bank_c")} == {"size", "nulls", "pad"}
    assert all(not leak.columns for leak in plan.leaks if leak.kind == "pad")


def test_mpc_only_keeps_everything_secure(tmp_path):
    config, sql, _ = _scenario(tmp_path, "hhi")
    plan = plan_query(sql, config, mpc_only=True)
    assert all(st.workflow.ops()[0].opname == "Scan" and len(st.workflow.ops()) == 2 for st in plan.local)
    assert plan.pushup is None


@pytest.mark.parametrize("name", ["hhi", "credit", "patients"])
def test_mpc_only_leaks_only_input_sizes_and_the_result(tmp_path, name):
    """The all-oblivious baseline: every boundary column secret, no public /
    hybrid step, no push-up, and a leakage report of sizes, which input
    columns hold NULLs, and the result only
    (even where the trust config would allow more, e.g. public pids)."""
    config, sql, _ = _scenario(tmp_path, name)
    plan = plan_query(sql, config, mpc_only=True)
    assert all(p == "secret" for pl in plan.places.values() for p in pl.cols.values())
    assert {s.mode for s in plan.secure} <= {"elementwise", "concat", "oblivious", "global", "cross"}
    assert plan.pushup is None
    for p in config.names:
        kinds = [leak.kind for leak in plan.leakage(p)]
        assert set(kinds) <= {"size", "nulls", "output"}
        assert kinds.count("output") == (1 if p in config.recipients else 0)
        assert kinds.count("size") == len(plan.inputs) - sum(1 for q, _ in plan.inputs.values() if q == p)


def test_mpc_only_credit_fuses_join_into_aggregate(tmp_path):
    config, sql, _ = _scenario(tmp_path, "credit")
    text = plan_query(sql, config, mpc_only=True).to_text()
    assert "[oblivious, match matrix only (fused into the aggregate)]" in text
    assert "[oblivious, sort-based, over the join's match matrix]" in text
    # the split keeps its hybrid plan (golden above)
    assert "fused" not in plan_query(sql, config).to_text()


def test_mpc_only_refuses_string_columns(tmp_path):
    config, _, path = _scenario(tmp_path, "patients")
    text = open(path).read().replace('diag = "int64"', 'diag = "string"', 1)
    with open(path, "w") as f:
        f.write(text)
    config = load_config(path)
    with pytest.raises(LeakRefused, match=r"--mpc-only would secret-share string column 'diag'"):
        plan_query("SELECT COUNT(*) AS n FROM visits_a WHERE diag = 'x'", config, mpc_only=True)


def test_raw_column_to_untrusted_recipient_is_refused(tmp_path):
    config, _, _ = _scenario(tmp_path, "credit")
    sql = "SELECT s.ssn, s.score FROM scores_b s JOIN zips z ON s.ssn = z.ssn"
    with pytest.raises(LeakRefused, match=r"column 'score'.*recipient 'regulator'"):
        plan_query(sql, config)


def test_multi_column_keys_oblivious_join(tmp_path):
    config, _, _ = _scenario(tmp_path, "patients")
    sql = "SELECT COUNT(*) AS n FROM visits_a a JOIN visits_b b ON a.pid = b.pid AND a.diag = b.diag"
    plan = plan_query(sql, config)
    join = next(s for s in plan.secure if s.op.opname == "Join")
    assert len(join.op.left_keys) == 2 and join.mode == "oblivious"


def test_group_key_narrowed_by_secret_join_key_is_refused(tmp_path):
    config, _, _ = _scenario(tmp_path, "credit")
    sql = ("SELECT z.zip, SUM(b.score) AS s FROM zips z JOIN scores_b b ON z.ssn = b.ssn AND z.zip = b.score "
           "GROUP BY z.zip")
    with pytest.raises(LeakRefused, match=r"column 'zip'"):
        plan_query(sql, config)


def _cli(tmp_path, toml: str, capsys) -> tuple[int, str]:
    cfg = tmp_path / "p.toml"
    cfg.write_text(toml)
    q = tmp_path / "q.sql"
    q.write_text("SELECT SUM(x) AS s FROM t")
    code = main(["mpc", "explain", str(q), "--parties", str(cfg)])
    return code, capsys.readouterr().err


BASE = """recipients = ["a"]
[[party]]
name = "a"
port = 9001
[[party]]
name = "b"
port = PORT_B
[tables.t]
OWNER
path = "t.csv"
columns = { x = "int64" }
VIS
"""


@pytest.mark.parametrize("owner,port,vis,message", [
    ('owner = "zed"', "9002", "", "unknown party 'zed'"),
    ("", "9002", "", "table 't' is owned by nobody"),
    ('owner = "a"', "9002", 'visible_to = { x = ["nobody"] }', "unknown party 'nobody'"),
    ('owner = "a"', "9001", "", "port clash"),
])
def test_config_errors_exit_2(tmp_path, capsys, owner, port, vis, message):
    code, err = _cli(tmp_path, BASE.replace("OWNER", owner).replace("PORT_B", port).replace("VIS", vis), capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_party_flag(tmp_path, capsys):
    config, _, path = _scenario(tmp_path, "hhi")
    code = main(["mpc", "run", os.path.join(os.path.dirname(path), "query.sql"), "--parties", path,
                 "--party", "nobody"])
    assert code == 2 and "unknown party 'nobody'" in capsys.readouterr().err


def test_window_runs_in_one_partys_stage_and_is_refused_across_parties(tmp_path):
    """A window over one party's rows stays in that party's cleartext stage;
    over the union of several parties' rows it is refused at explain time,
    naming the operator."""
    from musketeer.ir import UnsupportedError

    config, _, _ = _scenario(tmp_path, "credit")
    own = ("SELECT SUM(score) AS total FROM (SELECT ssn, score, "
           "ROW_NUMBER() OVER (PARTITION BY ssn ORDER BY score DESC) AS rn FROM scores_b) t WHERE rn = 1")
    plan = plan_query(own, config)
    assert any(op.opname == "Window" for st in plan.local for op in st.workflow.ops())
    across = ("WITH s AS (SELECT ssn, score FROM scores_b UNION ALL SELECT ssn, score FROM scores_c) "
              "SELECT SUM(score) AS total FROM (SELECT score, RANK() OVER (ORDER BY score) AS r FROM s) t WHERE r < 3")
    with pytest.raises(UnsupportedError, match=r"Window \(r\) over the rows of several parties"):
        plan_query(across, config)


# --- trust rules (mpc/README.md "Trust rules"; mpc/trust.py), one test each ----

@pytest.fixture(scope="module")
def four_parties(tmp_path_factory):
    """The four-party config of tests/test_mpc_nulls.py: pid and region
    public, hosp_a's ins_id visible to the agency, everything else private
    to its owner; the agency is the recipient."""
    from tests.mpc_helpers import write_parties
    from tests.test_mpc_nulls import PARTIES, _tables

    path = write_parties(tmp_path_factory.mktemp("trust"), PARTIES, ["agency"], [19301, 19302, 19303, 19304],
                         _tables())
    return load_config(str(path))


BOTH = "(SELECT pid, region, ins_id, cost FROM visits_a UNION ALL SELECT pid, region, ins_id, cost FROM visits_b)"


def _result_col(plan, name):
    return plan.info[id(plan.workflow.sinks[0].input)].cols[name]


def test_rule_1_input_columns_trusted_by_owner_and_visible_to(four_parties):
    plan_query("SELECT pid, region FROM visits_b", four_parties)  # public: the agency may see them
    with pytest.raises(LeakRefused, match=r"column 'cost'.*recipient 'agency'"):
        plan_query("SELECT pid, cost FROM visits_b", four_parties)


def test_rule_2_a_computed_column_is_trusted_by_what_it_reads(four_parties):
    plan_query("SELECT pid + 1 AS x, region * 2 AS y FROM visits_b", four_parties)
    with pytest.raises(LeakRefused, match=r"column 'x'"):
        plan_query("SELECT pid + cost AS x FROM visits_b", four_parties)


def test_rule_3_filters_and_joins_narrow_by_what_they_read(four_parties):
    plan_query("SELECT pid FROM visits_b WHERE region = 2", four_parties)
    with pytest.raises(LeakRefused, match=r"would reveal column 'pid'"):
        plan_query("SELECT pid FROM visits_b WHERE cost > 5", four_parties)
    with pytest.raises(LeakRefused, match=r"column 'region'"):
        plan_query("SELECT b.region FROM visits_b b JOIN claims c ON b.ins_id = c.ins_id", four_parties)
    plan_query("SELECT a.region FROM visits_a a JOIN claims c ON a.ins_id = c.ins_id", four_parties)  # keys: agency


def test_rule_4_count_star_reads_no_column(four_parties):
    """COUNT(*) over unfiltered rows is as public as the row counts;
    COUNT(cost) is trusted like cost. So the HAVING COUNT(*) below runs on
    a public count, and the issue's refusal ("Filter would reveal column
    'region'") is gone."""
    star = plan_query(f"SELECT region, COUNT(*) AS n FROM {BOTH} u GROUP BY region", four_parties)
    assert "*" in _result_col(star, "n").trust
    col = plan_query(f"SELECT region, COUNT(cost) AS n FROM {BOTH} u GROUP BY region", four_parties)
    assert "*" not in _result_col(col, "n").trust
    having = plan_query(f"SELECT region, COUNT(*) AS n FROM {BOTH} u GROUP BY region HAVING COUNT(*) > 3",
                        four_parties)
    assert "*" in _result_col(having, "region").trust  # the HAVING read nothing private


def test_rule_5_recipients_may_see_group_keys_and_aggregates(four_parties):
    """A HAVING over a private aggregate, and a GROUP BY a public column
    after a cross-party WHERE, show the public keys to the recipient (which
    groups exist is aggregate information); every intermediate step keeps
    its strict trust, and a key equal to a private column stays refused."""
    having = plan_query(f"SELECT region, SUM(cost) AS s FROM {BOTH} u GROUP BY region HAVING SUM(cost) > 100",
                        four_parties)
    region = _result_col(having, "region")
    assert region.lineage and "agency" in region.result_trust and "*" not in region.trust
    plan_query("SELECT a.region, COUNT(*) AS n FROM visits_a a JOIN claims c ON a.ins_id = c.ins_id "
               "WHERE c.amount > a.cost GROUP BY a.region", four_parties)
    with pytest.raises(LeakRefused, match=r"column 'region'"):  # region = cost on every surviving row
        plan_query("SELECT a.region, COUNT(*) AS n FROM visits_a a JOIN visits_b b ON a.region = b.cost "
                   "GROUP BY a.region", four_parties)


def test_rule_6_row_level_results_need_every_recipients_trust(four_parties):
    with pytest.raises(LeakRefused, match=r"column 'amount' \(row-level values of claims.amount\)"):
        plan_query("SELECT c.amount FROM claims c JOIN visits_a a ON c.ins_id = a.ins_id", four_parties)
    plan_query("SELECT SUM(c.amount) AS s FROM claims c JOIN visits_a a ON c.ins_id = a.ins_id", four_parties)
