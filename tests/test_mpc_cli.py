"""`musketeer mpc explain|keys|run --tls|demo` from the command line.

Golden split plans, one per Conclave pass (mpc/examples/queries.PASSES),
are `musketeer mpc explain` output: the stages and the per-party leakage
report. Regenerate with MUSKETEER_UPDATE_GOLDEN=1 after checking the diff.
Each golden test also checks the pass it is named after really happened,
so a regenerated golden cannot silently lose it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from musketeer.ir import operators as O
from musketeer.mpc.config import load_config
from musketeer.mpc.examples.data import SCENARIOS, write_scenario
from musketeer.mpc.examples.queries import PASSES
from musketeer.mpc.launch import free_ports, launch, run_all, wait_all
from tests.mpc_helpers import cleartext_answer, same_answer
from musketeer.mpc_cli import plan_query
from musketeer.cli import main

GOLDEN = Path(__file__).parent / "mpc_golden"
ROOT = Path(__file__).parent.parent


def _pass_setup(tmp_path: Path, name: str, rows: int = 10, ports: list[int] | None = None) -> tuple[str, str]:
    scenario, sql = PASSES[name]
    config = write_scenario(scenario, str(tmp_path / name), rows, ports or [19101, 19102, 19103])
    query = tmp_path / name / f"{name}.sql"
    query.write_text(sql.strip() + "\n")
    return config, str(query)


def _check_pass(name: str, plan) -> None:
    modes = [(s.op.opname, s.mode, s.stp) for s in plan.secure]
    if name == "push_down":
        for stage in plan.local:
            kinds = {op.opname for op in stage.workflow.ops()}
            assert {"Filter", "Aggregate"} <= kinds, kinds
        assert not any(op == "Filter" for op, _, _ in modes)
        assert ("Aggregate", "global", None) in modes
    elif name == "push_up":
        assert plan.pushup is not None
        pushed = [op.opname for op in plan.pushup.workflow.ops() if not isinstance(op, (O.Scan, O.Sink))]
        assert pushed == ["Aggregate", "Filter", "Sort", "Limit"], pushed
        assert not any(op == "Aggregate" for op, _, _ in modes)
    elif name == "hybrid_join":
        assert ("Join", "hybrid", "regulator") in modes
    elif name == "hybrid_aggregation":
        assert ("Aggregate", "hybrid", "regulator") in modes
        assert all(op != "Join" for op, _, _ in modes)
    elif name == "public_join":
        assert ("Join", "public", None) in modes
        # public keys: nobody learns a diagnosis, everybody may see the ids
        for p in plan.parties:
            assert all("diag" not in " ".join(leak.columns) for leak in plan.leakage(p) if leak.kind != "output")
    else:
        raise AssertionError(f"no check for pass {name}")


@pytest.mark.parametrize("name", sorted(PASSES))
def test_explain_golden_per_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    config, query = _pass_setup(tmp_path, name)
    assert main(["mpc", "explain", query, "--parties", config]) == 0
    text = capsys.readouterr().out
    golden = GOLDEN / f"pass_{name}.txt"
    if os.environ.get("MUSKETEER_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert "leakage (seen in the clear beyond own inputs):" in text
    _check_pass(name, plan_query(Path(query).read_text(), load_config(config)))


def _run_pass(tmp_path: Path, name: str, rows: int) -> None:
    config, query = _pass_setup(tmp_path, name, rows, free_ports(3))
    parties = list(SCENARIOS[PASSES[name][0]].parties)
    env = {p: {"MUSKETEER_MPC_RECORD": str(tmp_path / f"{p}.json")} for p in parties}
    runs = run_all(query, config, parties, timeout=600, env=env,
                   extra=["--output", str(tmp_path / "result.parquet")])
    for r in runs.values():
        assert r.returncode == 0, r.stderr
    import json

    import pandas as pd

    from tests.test_mpc_run import _check_report_against_trust

    cfg = load_config(config)
    plan = plan_query(Path(query).read_text(), cfg)
    for p in parties:  # what each process received in the clear is in the leakage report
        got_labels = {label for label, _ in json.loads((tmp_path / f"{p}.json").read_text())}
        assert got_labels <= {leak.text for leak in plan.leakage(p)}, (p, got_labels)
    _check_report_against_trust(plan, cfg)
    got = pd.read_parquet(tmp_path / "result.parquet")
    want = cleartext_answer(query, cfg)
    assert len(want) > 0
    if name == "hybrid_aggregation":  # no ORDER BY: compare as sets of rows
        got, want = (f.sort_values(list(f.columns)).reset_index(drop=True) for f in (got, want))
    assert same_answer(got, want), (got, want)


def test_push_down_query_three_processes(tmp_path: Path) -> None:
    _run_pass(tmp_path, "push_down", 50)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["push_up", "hybrid_join", "hybrid_aggregation", "public_join"])
def test_pass_query_three_processes(tmp_path: Path, name: str) -> None:
    _run_pass(tmp_path, name, 30)


# --- TLS -----------------------------------------------------------------------

def _keys(tmp_path: Path, config: str, out: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "musketeer", "mpc", "keys", "--parties", config, "--out", out],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_keys_layout(tmp_path: Path) -> None:
    config = write_scenario("patients", str(tmp_path / "p"), 5, [19101, 19102, 19103])
    out = _keys(tmp_path, config, str(tmp_path / "keys"))
    for i, party in enumerate(SCENARIOS["patients"].parties):
        d = tmp_path / "keys" / party
        assert sorted(os.listdir(d)) == sorted(["mpyc_ca.crt", f"party_{i}.crt", f"party_{i}.key"])
        assert oct((d / f"party_{i}.key").stat().st_mode & 0o777) == "0o600"
        assert f"party {party} (MPyC party {i})" in out
    assert (tmp_path / "keys" / "ca" / "mpyc_ca.key").exists()
    assert not (tmp_path / "keys" / "hosp_a" / "mpyc_ca.key").exists()  # the CA key is not handed out
    again = subprocess.run([sys.executable, "-m", "musketeer", "mpc", "keys", "--parties", config, "--out",
                            str(tmp_path / "keys")], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert again.returncode == 2 and "already holds keys" in again.stderr  # no silent new CA
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_tls_three_processes_cleartext_answer(tmp_path: Path) -> None:
    config = write_scenario("patients", str(tmp_path / "p"), 40, free_ports(3))
    query = os.path.join(os.path.dirname(config), "query.sql")
    _keys(tmp_path, config, str(tmp_path / "keys"))
    parties = list(SCENARIOS["patients"].parties)
    runs = run_all(query, config, parties, timeout=300,
                   extra=["--tls", "--keys", str(tmp_path / "keys"), "--output", str(tmp_path / "r.csv")])
    for r in runs.values():
        assert r.returncode == 0, r.stderr
    import pandas as pd

    assert same_answer(pd.read_csv(tmp_path / "r.csv"), cleartext_answer(query, load_config(config)))


def test_tls_plain_party_cannot_join_tls_parties(tmp_path: Path) -> None:
    """The TLS run above is really TLS: a party without --tls never gets in."""
    config = write_scenario("patients", str(tmp_path / "p"), 10, free_ports(3))
    query = os.path.join(os.path.dirname(config), "query.sql")
    _keys(tmp_path, config, str(tmp_path / "keys"))
    parties = list(SCENARIOS["patients"].parties)
    tls = ["--tls", "--keys", str(tmp_path / "keys"), "--timeout", "8"]
    procs = launch(query, config, parties[:2], extra=tls)
    procs.update(launch(query, config, parties[2:], extra=["--timeout", "8"]))
    start = time.monotonic()
    runs = wait_all(procs, timeout=90)
    assert time.monotonic() - start < 60
    assert all(r.returncode != 0 and "patients" not in r.stdout for r in runs.values())


@pytest.mark.parametrize("damage,message", [
    ("missing", "party_1.key is missing"),
    ("mismatched", "party_1.key does not fit"),
    ("other_party", "is not valid for MPyC party 1"),
])
def test_tls_bad_key_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str,
                                     message: str) -> None:
    config = write_scenario("patients", str(tmp_path / "p"), 5, free_ports(3))
    query = os.path.join(os.path.dirname(config), "query.sql")
    keys = tmp_path / "keys"
    _keys(tmp_path, config, str(keys))
    mine = keys / "hosp_b"
    if damage == "missing":
        (mine / "party_1.key").unlink()
    elif damage == "mismatched":
        _keys(tmp_path, config, str(tmp_path / "other"))
        shutil.copyfile(tmp_path / "other" / "hosp_b" / "party_1.key", mine / "party_1.key")
    else:  # hosp_a's certificate and key renamed as if they were hosp_b's
        shutil.copyfile(keys / "hosp_a" / "party_0.crt", mine / "party_1.crt")
        shutil.copyfile(keys / "hosp_a" / "party_0.key", mine / "party_1.key")
    start = time.monotonic()
    code = main(["mpc", "run", query, "--parties", config, "--party", "hosp_b", "--tls", "--keys", str(keys)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert time.monotonic() - start < 10  # refused before connecting, not at the peer timeout


@pytest.mark.slow
def test_tls_keys_from_another_run_fail_fast(tmp_path: Path) -> None:
    """hosp_c holds a consistent set from another `mpc keys` run: its own
    check passes, the handshake does not. A party that sees the handshake
    fail says so in one line with exit 2; nobody hangs or prints a result."""
    config = write_scenario("patients", str(tmp_path / "p"), 10, free_ports(3))
    query = os.path.join(os.path.dirname(config), "query.sql")
    keys = tmp_path / "keys"
    _keys(tmp_path, config, str(keys))
    _keys(tmp_path, config, str(tmp_path / "other"))
    shutil.rmtree(keys / "hosp_c")
    shutil.copytree(tmp_path / "other" / "hosp_c", keys / "hosp_c")
    start = time.monotonic()
    runs = run_all(query, config, list(SCENARIOS["patients"].parties), timeout=90,
                   extra=["--tls", "--keys", str(keys), "--timeout", "10"])
    assert time.monotonic() - start < 60
    tls_failures = [r for r in runs.values() if r.returncode == 2]
    assert tls_failures, {p: r.stderr for p, r in runs.items()}
    for r in tls_failures:
        assert "TLS handshake with party 'hosp_c' failed" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert all(r.returncode in (2, 3) and r.stdout == "" for r in runs.values())


# --- demo --------------------------------------------------------------------------

def _demo(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "musketeer", "mpc", "demo", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout, check=False)


def test_demo_patients_over_tls() -> None:
    proc = _demo("--rows", "20", "--only", "patients", "--tls")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "== patients: parties hosp_a, hosp_b, hosp_c on 127.0.0.1 (TLS), 20 rows each" in out
    assert "[split] answer at hosp_a:" in out and "matches" in out
    assert "time: local" in out and "secure" in out


@pytest.mark.slow
def test_demo_all_three_scenarios() -> None:
    """HHI, credit (hybrid join + hybrid aggregation) and patients (public
    join): each prints the answer, a matching cleartext check and the
    local/secure time split."""
    proc = _demo("--rows", "40")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for name in ("hhi", "credit", "patients"):
        assert f"== {name}: " in out
    assert out.count("cleartext check (all tables in one place, DuckDB): matches") == 3
    assert out.count("time: local") == 3
    assert "answer at regulator:" in out and "avg_score" in out and "hhi" in out


def test_demo_reports_a_failing_scenario() -> None:
    """Bad --rows is a usage error, not a crash."""
    proc = _demo("--rows", "0", "--only", "hhi", timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("setting", ["MUSKETEER_MPC_FIXED=64", "MUSKETEER_MPC_BLOCK=0",
                                     "MUSKETEER_MPC_ONEHOT_MAX=many"])
def test_bad_secure_setting_one_line_exit_2_before_connecting(tmp_path: Path, setting: str) -> None:
    """A bad secure-stage setting stops the party before it connects (its
    peers never start here: it would otherwise wait out --timeout)."""
    config = write_scenario("credit", str(tmp_path / "c"), 5, free_ports(3))
    query = os.path.join(os.path.dirname(config), "query.sql")
    out = tmp_path / "result.csv"
    name, value = setting.split("=")
    proc = subprocess.run([sys.executable, "-m", "musketeer", "mpc", "run", query, "--parties", config,
                           "--party", "regulator", "--timeout", "60", "--output", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=50, check=False,
                          env={**os.environ, name: value})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()


def test_port_in_use_one_line_exit_2(tmp_path: Path) -> None:
    """The config's port is taken by another process on this machine."""
    import socket

    ports = free_ports(3)
    config = write_scenario("patients", str(tmp_path / "p"), 5, ports)
    query = os.path.join(os.path.dirname(config), "query.sql")
    with socket.socket() as s:
        s.bind(("0.0.0.0", ports[1]))
        s.listen()
        proc = subprocess.run([sys.executable, "-m", "musketeer", "mpc", "run", query, "--parties", config,
                               "--party", "hosp_b", "--timeout", "5"],
                              capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.strip() == (f"musketeer: error: party 'hosp_b': port {ports[1]} is already in use on this "
                                   f"machine (another process, or this party started twice?)")


def test_tls_is_the_default_across_machines(tmp_path: Path) -> None:
    """A party on another machine: without keys the run stops before
    connecting (one line, exit 2, naming --plain); --plain is the explicit
    way to unencrypted TCP; loopback-only configs stay plain by default."""
    ports = free_ports(3)
    config = write_scenario("patients", str(tmp_path / "p"), 5, ports)
    query = os.path.join(os.path.dirname(config), "query.sql")
    text = Path(config).read_text()
    Path(config).write_text(text.replace(f'host = "127.0.0.1"\nport = {ports[2]}', f'host = "192.0.2.7"\nport = {ports[2]}'))

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "musketeer", "mpc", "run", query, "--parties", config,
                               "--party", "hosp_a", "--timeout", "3", *extra],
                              capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)

    default = run()
    assert default.returncode == 2 and "TLS by default" in default.stderr and "--plain" in default.stderr
    assert len(default.stderr.strip().splitlines()) == 1 and "Traceback" not in default.stderr
    both = run("--tls", "--plain")
    assert both.returncode == 2 and "contradict" in both.stderr
    plain = run("--plain")  # gets as far as connecting: nobody answers, so the peer timeout
    assert plain.returncode == 3 and "could not reach every party" in plain.stderr, plain.stderr
