"""Our ciel engine vs dask.distributed futures, same machine, same run.

    .venv/bin/python benchmarks/ciel_vs_dask.py [--quick]

Both get 2 worker processes with 4 slots/threads each. Measured: empty-task
throughput, fan-out/fan-in of 1000 x 1 ms tasks, recursive fib(15) with
nested spawns (ciel: continuation style; Dask: tasks submitting tasks with
secede/rejoin), per-iteration latency of a data-dependent loop (ciel: a task
tail-spawning the next iteration; Dask: the usual driver loop), and time to
the correct result of a multi-stage job when a worker is SIGKILLed mid-way.
Both systems de-duplicate identical tasks (ciel: ids hash fn+args; Dask:
pure=True keys), which makes fib(15) ~16 distinct tasks in both.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musketeer.backends.ciel.engine import examples as ex  # noqa: E402
from musketeer.backends.ciel.engine.cluster import Cluster  # noqa: E402


def dask_fib(n: int) -> int:
    if n < 2:
        return n
    from distributed import secede, rejoin, get_client
    client = get_client()
    a, b = client.submit(dask_fib, n - 1), client.submit(dask_fib, n - 2)
    secede()
    x, y = client.gather([a, b])
    rejoin()
    return x + y


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def best(fn, repeat: int) -> float:
    return min(timed(fn) for _ in range(repeat))


def bench_ciel(n_tasks: int, repeat: int) -> dict[str, float]:
    out = {}
    with Cluster(workers=2, slots=4) as c:
        cl = c.client()
        salt = iter(range(10**9))
        def empty():
            s = next(salt) * n_tasks
            refs = [cl.spawn(ex.noop, s + i) for i in range(n_tasks)]
            cl.deref_many(refs)
        out["throughput"] = n_tasks / best(empty, repeat)
        out["fan"] = best(lambda: cl.deref(cl.spawn(ex.fan, 1000, 1 + next(salt) * 1e-9)), repeat)
        out["fib"] = timed(lambda: cl.deref(cl.spawn(ex.fib, 15)))
        iters = 1000
        out["iter_ms"] = timed(lambda: cl.deref(cl.spawn(ex.countdown, iters))) / iters * 1000
    with Cluster(workers=3, slots=4, heartbeat_timeout=2.0) as c:
        cl = c.client()
        t = time.perf_counter()
        root = cl.spawn(ex.pipeline, 6, 6, 200_000, 40)
        threading.Timer(0.2, c.kill_worker, args=(0,)).start()
        result = cl.deref(root, timeout=120)
        out["kill"] = time.perf_counter() - t
        out["kill_ok"] = float(result == _pipeline_expected(6, 6, 200_000))
    return out


def _pipeline_expected(width: int, depth: int, n: int) -> int:
    return sum(64 * ((j + depth * (depth + 1) // 2) % 256) + n for j in range(width))


def bench_dask(n_tasks: int, repeat: int) -> dict[str, float]:
    from distributed import Client, LocalCluster
    out = {}
    with LocalCluster(n_workers=2, threads_per_worker=4, processes=True, dashboard_address=None) as lc, \
            Client(lc) as client:
        salt = iter(range(10**9))
        def empty():
            s = next(salt) * n_tasks
            client.gather(client.map(ex.noop, range(s, s + n_tasks)))
        out["throughput"] = n_tasks / best(empty, repeat)
        def fan():
            s = next(salt)
            parts = client.map(ex.sleep_value, [1] * 1000, range(s * 1000, s * 1000 + 1000))
            client.submit(ex.total, *parts).result()
        out["fan"] = best(fan, repeat)
        out["fib"] = timed(lambda: client.submit(dask_fib, 15).result())
        iters = 200
        def loop():
            x = client.submit(ex.noop, iters, pure=False)
            while client.submit(ex.noop, x, pure=False).result() > 0:
                x = client.submit(ex.add, x, -1, pure=False)
        out["iter_ms"] = timed(loop) / iters * 1000
        def kill_job():
            pids = list(client.run(os.getpid).values())
            t = time.perf_counter()
            heads = []
            for j in range(6):
                ref = client.submit(ex.payload, 200_000, j, pure=False)
                for k in range(6):
                    ref = client.submit(ex.stage, ref, k + 1, 40, pure=False)
                heads.append(client.submit(ex.checksum, ref, pure=False))
            total = client.submit(ex.total, *heads, pure=False)
            threading.Timer(0.2, os.kill, args=(pids[0], signal.SIGKILL)).start()
            result = total.result()
            return time.perf_counter() - t, result
        seconds, result = kill_job()
        out["kill"] = seconds
        out["kill_ok"] = float(result == _pipeline_expected(6, 6, 200_000))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    n, repeat = (2000, 1) if a.quick else (10000, 3)
    ciel, dask = bench_ciel(n, repeat), bench_dask(n, repeat)
    rows = [("empty-task throughput (tasks/s)", "throughput", "{:,.0f}"),
            ("fan-out/in 1000 x 1 ms (s)", "fan", "{:.3f}"),
            ("fib(15) nested spawns (s)", "fib", "{:.3f}"),
            ("data-dependent loop, per iteration (ms)", "iter_ms", "{:.3f}"),
            ("worker SIGKILL mid-job: time to correct result (s)", "kill", "{:.2f}"),
            ("  result correct after the kill", "kill_ok", "{:.0f}")]
    print(f"| {'measure':52} | {'ciel':>10} | {'dask':>10} |")
    print(f"|{'-' * 54}|{'-' * 12}|{'-' * 12}|")
    for label, key, fmt in rows:
        print(f"| {label:52} | {fmt.format(ciel[key]):>10} | {fmt.format(dask[key]):>10} |")
    print(f"\nthroughput ratio ciel/dask: {ciel['throughput'] / dask['throughput']:.1f}x")


if __name__ == "__main__":
    main()
