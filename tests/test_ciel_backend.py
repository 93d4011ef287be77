"""The ciel backend: partitioned programs, loops inside the engine, runs on a given master."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.ciel.runner import shared_cluster
from musketeer import api

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _query(tmp_path: Path) -> Path:
    (tmp_path / "t.csv").write_text("k,v\n1,10\n2,20\n1,5\n")
    sql = tmp_path / "q.sql"
    sql.write_text("SELECT k, sum(v) AS s FROM t GROUP BY k ORDER BY k")
    return sql


def test_generated_program_is_partitioned(tmp_path: Path) -> None:
    text = api.compile_workflow(_query(tmp_path), backend="ciel", tables={"t": str(tmp_path / "t.csv")}).text
    assert "def job(paths" in text
    assert "shuffle(t" in text  # GROUP BY k: hash-partitioned on k
    assert "gather(" in text  # ORDER BY: one partition
    compile(text, "q.py", "exec")


def test_run_on_a_given_master(tmp_path: Path) -> None:
    cluster = shared_cluster()
    run = api.execute(_query(tmp_path), backend="ciel", tables={"t": str(tmp_path / "t.csv")},
                      options={"ciel_master": cluster.address, "ciel_token": cluster.token})
    out = run.result.outputs["result"]
    assert out["k"].tolist() == [1, 2] and out["s"].tolist() == [15, 20]


def test_unreachable_master_is_not_available() -> None:
    from backends.base import RunOptions
    from backends.ciel import BACKEND
    ok, reason = BACKEND.available(RunOptions(extra={"ciel_master": "127.0.0.1:1", "ciel_token": "x"}))
    assert not ok and "127.0.0.1:1" in reason


@pytest.mark.parametrize("example", ["pagerank.py", "connected_components.py"])
def test_loops_run_inside_the_engine_and_match_local(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES)
    text = api.compile_workflow(EXAMPLES / example, backend="ciel").text
    assert "loop_step(" in text and "run_loop(" not in text.split("def job(paths")[1]  # no driver loop
    ours = api.execute(EXAMPLES / example, backend="ciel").result.outputs["result"]
    local = api.execute(EXAMPLES / example, backend="local").result.outputs["result"]
    assert ours.shape == local.shape
    for c in local.columns:
        a, b = ours[c].tolist(), local[c].tolist()
        assert all(x == y or abs(x - y) < 1e-9 for x, y in zip(a, b)), c


def test_cli_master_worker_and_ciel_master_option(tmp_path: Path) -> None:
    """`musketeer ciel master/worker` by hand, then `run --ciel-master` on them."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, MUSKETEER_CIEL_TOKEN="t0k3n")
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "musketeer.cli"]
    master = subprocess.Popen([*cmd, "ciel", "master", "--port", "0"], env=env, cwd=root,
                              stdout=subprocess.PIPE, text=True)
    procs = [master]
    try:
        port = master.stdout.readline().split()[1]
        procs.append(subprocess.Popen([*cmd, "ciel", "worker", "--master", f"127.0.0.1:{port}", "--slots", "2"],
                                      env=env, cwd=root, stdout=subprocess.DEVNULL))
        sql = _query(tmp_path)
        out = subprocess.run([*cmd, "run", str(sql), "--table", f"t={tmp_path / 't.csv'}", "--backend", "ciel",
                              "--ciel-master", f"127.0.0.1:{port}"], env=env, cwd=root, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "15" in out.stdout and "20" in out.stdout
    finally:
        for p in procs:
            p.kill()
            p.wait()
        master.stdout.close()
