"""The CIEL-style engine: task API, no deadlock, auth, lineage recovery, journal, spill."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from musketeer.backends.ciel.engine import examples as ex
from musketeer.backends.ciel.engine.api import Ref, TaskError, deref, spawn
from musketeer.backends.ciel.engine.cluster import Cluster
from musketeer.backends.ciel.engine.protocol import parse_address, recv_frame, send_frame


@pytest.fixture(scope="module")
def cluster():
    with Cluster(workers=2, slots=2, spill_threshold=64 * 1024) as c:
        yield c


def test_spawn_deref_and_tail_spawn(cluster):
    with cluster.client().as_default():
        assert deref(spawn(ex.add, 2, 3)) == 5
        assert deref(spawn(ex.add, spawn(ex.noop, 4), 1)) == 5  # Ref args are dependencies
        assert deref(spawn(ex.fib, 12)) == 144  # continuation style: tail-spawns all the way down
        assert deref(spawn(ex.countdown, 200)) == "done"  # a 200-iteration data-dependent loop


def test_deterministic_ids_run_once(cluster):
    c = cluster.client()
    a, b = c.spawn(ex.sleep_value, 1, 42), c.spawn(ex.sleep_value, 1, 42)
    assert a == b and isinstance(a, Ref)
    assert c.deref(a) == 1
    assert c.info()["runs"][a.id] == 1
    assert c.spawn(ex.sleep_value, 1, 43) != a


def test_task_error_reaches_deref(cluster):
    c = cluster.client()
    with pytest.raises(TaskError, match="unsupported operand"):
        c.deref(c.spawn(ex.add, 1, "x"))
    with pytest.raises(TaskError, match="failed"):  # and propagates through dependents
        c.deref(c.spawn(ex.add, c.spawn(ex.add, 1, "y"), 1))


def test_functions_are_named_not_pickled(cluster):
    with pytest.raises(ValueError, match="module-level"):
        cluster.client().spawn(lambda: 1)


def test_nested_blocking_spawns_do_not_deadlock():
    # 2 workers x 1 slot, and every inner task blocks on its children.
    with Cluster(workers=2, slots=1) as c:
        assert c.client().deref(c.client().spawn(ex.fib_blocking, 9), timeout=30) == 34


def _refused(address: str, attempt: str) -> bool:
    """Connect without the token; True if the peer closes the connection on us."""
    sock = socket.create_connection(parse_address(address), timeout=5)
    try:
        challenge = recv_frame(sock, 256)
        assert challenge.startswith(b"CIEL1")
        if attempt == "wrong-mac":
            send_frame(sock, b"\0" * 64)
        else:  # a pickle straight away: must never be unpickled
            send_frame(sock, b"\x80\x05N.")
        sock.settimeout(5)
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True
    finally:
        sock.close()


@pytest.mark.parametrize("attempt", ["wrong-mac", "pickle"])
def test_auth_refused_by_master_and_worker(cluster, attempt):
    assert _refused(cluster.address, attempt)
    assert _refused(cluster.worker_addresses[0], attempt)
    assert cluster.client().deref(cluster.client().spawn(ex.add, 1, 1)) == 2  # still serving


def test_wrong_token_client_is_refused(cluster):
    from musketeer.backends.ciel.engine.api import Client
    from musketeer.backends.ciel.engine.protocol import AuthError
    with pytest.raises(AuthError):
        Client(cluster.address, "not-the-token", reconnect_timeout=1)


def test_spill_and_worker_to_worker_transfer(cluster):
    c = cluster.client()
    parts = [c.spawn(ex.payload, 200_000, i) for i in range(8)]
    assert c.deref(c.spawn(ex.total, *[c.spawn(ex.length, p) for p in parts])) == 8 * 200_000
    # a task needing all parts runs on one worker: it fetched the others from its peer
    assert c.deref(c.spawn(ex.total_length, *parts)) == 8 * 200_000
    spilled = [{p.name for p in (cluster.dir / f"spill-{i}").glob("*")} for i in range(2)]
    held = {p.id for p in parts}
    assert all(s & held for s in spilled), "objects above the threshold are spilled on both workers"
    both = spilled[0] & spilled[1] & held
    assert both, "some part was copied worker-to-worker"
    assert c.deref(parts[0]) == bytes([0]) * 200_000  # the client fetches from a worker too


def _kill_worker_trial(seed: int) -> None:
    with Cluster(workers=3, slots=2, heartbeat_timeout=2.0) as c:
        client = c.client()
        root = client.spawn(ex.pipeline, 4, 4, 100_000 + seed, 30)
        time.sleep(0.1 + 0.05 * (seed % 5))
        c.kill_worker(seed % 3)
        result = client.deref(root, timeout=60)
        want = sum(sum((j + sum(range(1, 5))) % 256 for _ in range(64)) + 100_000 + seed for j in range(4))
        assert result == want


@pytest.mark.parametrize("seed", range(3))
def test_kill_worker_mid_job(seed):
    _kill_worker_trial(seed)


@pytest.mark.slow
def test_kill_worker_mid_job_20_trials():
    for seed in range(20):
        _kill_worker_trial(seed)


def test_lost_outputs_are_recomputed_from_lineage():
    with Cluster(workers=2, slots=2) as c:
        client = c.client()
        parts = [client.spawn(ex.payload, 50_000, i) for i in range(6)]
        assert client.deref(client.spawn(ex.total, *[client.spawn(ex.length, p) for p in parts])) == 300_000
        c.kill_worker(0)
        time.sleep(0.3)
        again = client.spawn(ex.total, *[client.spawn(ex.checksum, p) for p in parts])
        assert client.deref(again, timeout=30) == sum(64 * (i % 256) + 50_000 for i in range(6))
        runs = client.info()["runs"]
        assert all(runs[p.id] <= 2 for p in parts)
        assert any(runs[p.id] == 2 for p in parts) and any(runs[p.id] == 1 for p in parts)


def test_master_restart_resumes_from_journal():
    with Cluster(workers=2, slots=2, grace=0.5) as c:
        client = c.client()
        root = client.spawn(ex.pipeline, 3, 5, 10_000, 60)
        time.sleep(0.4)
        before = client.info()["tasks"].get("done", 0)
        c.restart_master()
        assert client.deref(root, timeout=60) == sum(64 * ((j + 15) % 256) + 10_000 for j in range(3))
        info = client.info()
        assert before > 0
        assert info["tasks"]["done"] >= before
        # tasks finished before the restart were not run again by the new master
        assert sum(info["runs"].values()) < len(info["fn"])


def test_forget_compacts_the_journal_and_a_restart_keeps_it_forgotten():
    from musketeer.backends.ciel.engine.api import Client
    with Cluster(workers=2, slots=2, grace=0.5) as c:
        journal = Path(c.journal)
        sizes = []
        for job_no in range(3):
            job = Client(c.address, c.token)
            try:
                assert job.deref(job.spawn(ex.pipeline, 3, 5, 10_000, 60 + job_no), timeout=60) > 0
                grown = journal.stat().st_size
                job.forget()
            finally:
                job.close()
            sizes.append(journal.stat().st_size)
            assert sizes[-1] < grown / 4  # the job's spawn and done records are gone
        assert max(sizes) - min(sizes) < 1024  # flat over jobs, not growing with each one
        keep = c.client()
        kept = keep.spawn(ex.add, 2, 40)
        assert keep.deref(kept) == 42
        c.restart_master()
        info = keep.info()
        assert set(info["fn"]) == {kept.id}  # forgotten jobs stay forgotten, the live one is back
        assert keep.deref(kept, timeout=30) == 42


def test_replay_honours_a_forget_the_master_did_not_compact(tmp_path):
    # the master died between logging a forget and rewriting the journal
    from musketeer.backends.ciel.engine.journal import Journal
    from musketeer.backends.ciel.engine.master import Master
    j = Journal(tmp_path / "master.journal")
    for tid, ns in (("a1", "job-a"), ("a2", "job-a"), ("b1", "job-b")):
        j.append(("spawn", tid, ns, "fn", b"", []))
    j.append(("done", "a1", 3, b"abc", None))
    j.append(("forget", "job-a"))
    j.close()
    m = Master(b"token", tmp_path / "master.journal")
    assert set(m.tasks) == {"b1"} and not m.objects
    m.journal.close()


def test_all_workers_dead_fails_the_job_promptly():
    # Every worker SIGKILLed mid-job (as the OOM killer does): deref must fail
    # with one clear line within the grace period, not wait forever.
    from musketeer.backends.ciel.engine.api import ClusterLost
    with Cluster(workers=2, slots=2, worker_grace=1.0) as c:
        client = c.client()
        root = client.spawn(ex.pipeline, 4, 4, 10_000, 500)
        time.sleep(0.3)
        c.kill_worker(0)
        c.kill_worker(1)
        start = time.monotonic()
        with pytest.raises(ClusterLost) as info:
            client.deref(root, timeout=30)
        assert time.monotonic() - start < 10
        message = str(info.value)
        assert message.startswith("ciel: all 2 workers died (") and message.endswith("; job aborted")
        assert "\n" not in message
        assert c.deaths() == ("worker 0 exit -9: killed, possibly out of memory; "
                              "worker 1 exit -9: killed, possibly out of memory")
        # a worker that joins later runs the same job again, from where lineage says
        c.add_worker()
        assert client.deref(root, timeout=60) == sum(64 * ((j + 10) % 256) + 10_000 for j in range(4))
        # a job submitted when no worker is left fails too (after the grace period)
        c.kill_worker(2)
        with pytest.raises(ClusterLost, match="job aborted"):
            client.deref(client.spawn(ex.sleep_value, 10, 7), timeout=30)


def test_forget_drops_a_finished_jobs_tasks_and_objects(cluster):
    from musketeer.backends.ciel.engine.api import Client
    job = Client(cluster.address, cluster.token)
    try:
        parts = [job.spawn(ex.payload, 200_000, 100 + i) for i in range(4)]  # spilled (over 64 KiB)
        assert job.deref(job.spawn(ex.total, *[job.spawn(ex.length, p) for p in parts])) == 800_000
        spilled = {p.name for i in range(2) for p in (cluster.dir / f"spill-{i}").glob("*")}
        assert {p.id for p in parts} <= spilled
        before = sum(cluster.client().info()["tasks"].values())
        job.forget()
        deadline = time.monotonic() + 10
        while sum(cluster.client().info()["tasks"].values()) > before - 9:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while {p.name for i in range(2) for p in (cluster.dir / f"spill-{i}").glob("*")} & {p.id for p in parts}:
            assert time.monotonic() < deadline, "the workers deleted the job's objects"
            time.sleep(0.05)
    finally:
        job.close()
    c = cluster.client()  # other clients are untouched, and the cluster still works
    assert c.deref(c.spawn(ex.add, 2, 40)) == 42
