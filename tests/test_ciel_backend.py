"""The ciel backend: partitioned programs, loops inside the engine, runs on a given master."""

from __future__ import annotations

from pathlib import Path

import pytest

from musketeer.backends.ciel.runner import shared_cluster
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
    from musketeer.backends.base import RunOptions
    from musketeer.backends.ciel import BACKEND
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


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_cli_master_worker_and_ciel_master_option(tmp_path: Path, tls: bool) -> None:
    """`musketeer ciel master/worker` by hand, then `run --ciel-master` on them;
    with `musketeer ciel keys` and $MUSKETEER_CIEL_TLS every connection is TLS."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, MUSKETEER_CIEL_TOKEN="t0k3n")
    env.pop("MUSKETEER_CIEL_TLS", None)
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "musketeer.cli"]
    if tls:
        keys = subprocess.run([*cmd, "ciel", "keys", "--out", str(tmp_path / "keys")], env=env, cwd=root,
                              capture_output=True, text=True, timeout=60)
        assert keys.returncode == 0, keys.stderr
        env["MUSKETEER_CIEL_TLS"] = str(tmp_path / "keys")
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
        if tls:  # a client without the keys does not get through
            from musketeer.backends.ciel.engine.api import Client, MasterLost
            os.environ.pop("MUSKETEER_CIEL_TLS", None)
            with pytest.raises(MasterLost):
                Client(f"127.0.0.1:{port}", "t0k3n", reconnect_timeout=0.5)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        master.stdout.close()


def slow_partition(part):  # a UDF the workers import as tests.test_ciel_backend:slow_partition
    import time
    time.sleep(2)
    return part


def _slow_workflow(tmp_path: Path) -> Path:
    (tmp_path / "t.csv").write_text("k,v\n" + "".join(f"{i % 4},{i}\n" for i in range(40)))
    wf = tmp_path / "slow.py"
    wf.write_text("from musketeer import col, read\n"
                  "from tests.test_ciel_backend import slow_partition\n"
                  f"t = read({str(tmp_path / 't.csv')!r})\n"
                  "workflow = t.apply(slow_partition, mode='partition').group_by('k')"
                  ".agg(s=col('v').sum()).order_by('k')\n")
    return wf


def _children(pid: int, needle: str) -> list[int]:
    """Live child processes of `pid` whose command line contains `needle` (from /proc)."""
    import os
    found = []
    for d in os.listdir("/proc"):
        try:
            ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = Path(f"/proc/{d}/cmdline").read_text()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and needle in cmd:
            found.append(int(d))
    return found


def test_one_of_two_workers_killed_mid_job_still_right(tmp_path: Path) -> None:
    import threading
    import time

    from musketeer.backends.ciel.engine.cluster import Cluster
    wf = _slow_workflow(tmp_path)
    with Cluster(workers=2) as c:
        client = c.client()
        box: dict = {}
        run = threading.Thread(target=lambda: box.update(r=api.execute(
            wf, backend="ciel", options={"ciel_master": c.address, "ciel_token": c.token})))
        run.start()
        deadline = time.monotonic() + 30
        while not any(w["running"] for w in client.info()["workers"].values()):
            assert time.monotonic() < deadline and run.is_alive()
            time.sleep(0.05)
        time.sleep(0.5)  # into the 2 s UDF: kill the busiest worker
        busy = client.info()["workers"]
        c.kill_worker(c.worker_addresses.index(max(busy, key=lambda a: busy[a]["running"])))
        rerun = False  # seen while the job runs: when it ends, the job's tasks are forgotten
        while run.is_alive() and not rerun and time.monotonic() < deadline + 60:
            rerun = 2 in client.info()["runs"].values()
            time.sleep(0.05)
        run.join(60)
        assert not run.is_alive()
        assert rerun, "the killed worker's tasks ran again on the survivor"
    out = box["r"].result.outputs["result"]
    assert out["k"].tolist() == [0, 1, 2, 3]
    assert out["s"].tolist() == [sum(range(k, 40, 4)) for k in range(4)]


def test_all_workers_killed_cli_fails_promptly_and_cleanly(tmp_path: Path) -> None:
    """SIGKILL every worker mid-job (what the OOM killer did at TPC-H SF 1):
    one line naming the deaths, exit 1, no output file, no process left."""
    import os
    import signal
    import subprocess
    import sys
    import time
    root = Path(__file__).resolve().parents[1]
    wf, out_csv = _slow_workflow(tmp_path), tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "-m", "musketeer.cli", "run", str(wf), "--backend", "ciel",
                             "--output", str(out_csv)], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(_children(proc.pid, "musketeer.backends.ciel.engine.worker")) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        engine = _children(proc.pid, "musketeer.backends.ciel.engine")  # the master too
        time.sleep(1.0)  # into the 2 s UDF
        for pid in _children(proc.pid, "musketeer.backends.ciel.engine.worker"):
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = proc.communicate(timeout=30)
        assert time.monotonic() - killed < 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, stderr
    assert stderr.strip() == ("musketeer: error: ciel: all 2 workers died (worker 0 exit -9: killed, possibly out "
                              "of memory; worker 1 exit -9: killed, possibly out of memory); job aborted")
    assert not out_csv.exists() and stdout == ""
    time.sleep(1.0)  # children exit with their parent (they also watch its pid)
    assert [p for p in engine if Path(f"/proc/{p}").exists()] == []


def test_parquet_scan_reads_only_its_row_groups(tmp_path: Path) -> None:
    """Each scan task reads its slice of row groups (not the whole file per partition);
    the rows, their order and bad-column errors are the local engine's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from musketeer.ir import DataError
    n = 1000
    table = pa.table({"k": [i % 7 for i in range(n)], "v": list(range(n)),
                      "s": [f"x{i % 3}" for i in range(n)]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=90)  # 12 row groups
    pq.write_table(table, tmp_path / "one.parquet")  # 1 row group: read whole, sliced
    sql = tmp_path / "q.sql"
    sql.write_text("SELECT k, s, sum(v) AS total, count(*) AS n FROM t WHERE v % 5 <> 0 GROUP BY k, s ORDER BY k, s")
    text = api.compile_workflow(sql, backend="ciel", tables={"t": str(tmp_path / "t.parquet")}).text
    assert "read_part(part, nparts, " in text
    for f in ("t.parquet", "one.parquet"):
        ours = api.execute(sql, backend="ciel", tables={"t": str(tmp_path / f)}).result.outputs["result"]
        local = api.execute(sql, backend="local", tables={"t": str(tmp_path / f)}).result.outputs["result"]
        assert ours.to_dict("list") == local.to_dict("list")
    rows = tmp_path / "rows.sql"
    rows.write_text("SELECT v FROM t")  # no ORDER BY: partitions concatenate in file order
    out = api.execute(rows, backend="ciel", tables={"t": str(tmp_path / "t.parquet")}).result.outputs["result"]
    assert out["v"].tolist() == list(range(n))
    pq.write_table(table.rename_columns(["k", "w", "s"]), tmp_path / "bad.parquet", row_group_size=90)
    from musketeer.backends.base import RunOptions
    from musketeer.backends.ciel.runner import run_program
    program = api.compile_workflow(sql, backend="ciel", tables={"t": str(tmp_path / "t.parquet")})
    with pytest.raises(DataError, match="no column 'v'"):  # the file changed since compile time
        run_program(program, RunOptions(tables={"t": str(tmp_path / "bad.parquet")}))


def test_every_worker_dying_while_the_local_cluster_starts_is_workers_lost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Under load the kill can land before the workers announce themselves: that
    # was "internal error: RuntimeError: ... worker did not start".
    from musketeer.backends.ciel import runner
    from musketeer.backends.ciel.engine.cluster import Cluster
    real = Cluster._started

    def started(proc):  # type: ignore[no-untyped-def]
        if "musketeer.backends.ciel.engine.worker" in proc.args:
            proc.kill()
            proc.wait()
        return real(proc)
    monkeypatch.setattr(Cluster, "_started", staticmethod(started))
    monkeypatch.setattr(runner, "_shared", None)
    with pytest.raises(runner.WorkersLost) as info:
        api.execute(_query(tmp_path), backend="ciel", tables={"t": str(tmp_path / "t.csv")})
    assert str(info.value) == ("ciel: all 2 workers died (worker 0 exit -9: killed, possibly out of memory; "
                               "worker 1 exit -9: killed, possibly out of memory); job aborted")
    assert info.value.exit_code == 1


def test_a_workers_own_failure_is_one_line() -> None:
    # A worker that cannot store an output (the spill race, a full disk) is
    # neither the data's fault nor a bug of the program: one line, exit 1.
    import types

    from musketeer.backends.ciel.engine.api import TaskError
    from musketeer.backends.ciel.runner import EngineFailure, task_error
    module = types.ModuleType("m")
    stored = TaskError("task 0123 failed:\nciel: worker 127.0.0.1:5 could not store the output of m:f: "
                       "OSError: [Errno 28] No space left on device")
    error = task_error(module, stored)
    assert isinstance(error, EngineFailure) and error.exit_code == 1
    assert str(error) == ("ciel: worker 127.0.0.1:5 could not store the output of m:f: "
                          "OSError: [Errno 28] No space left on device")
    spilled = TaskError("task 0123 failed:\nTraceback (most recent call last):\n  File \"store.py\", line 3\n"
                        "FileNotFoundError: [Errno 2] No such file or directory: 'spill-0/ab.tmp' -> "
                        "'spill-0/ab'")
    assert str(task_error(module, spilled)) == (
        "ciel: a task failed on a worker: FileNotFoundError: [Errno 2] No such file or directory: "
        "'spill-0/ab.tmp' -> 'spill-0/ab'")
    assert task_error(module, TaskError("Traceback...\nKeyError: 'x'")) is None  # a bug stays internal
