"""Skywriting on ciel vs the same work through the Python task API, one cluster, one run.

    .venv/bin/python benchmarks/sky_loop.py [--repeat 5] [--iterations 50,250]

Measured on one local cluster (master + 2 workers, 4 slots each), every
measurement in a fresh client namespace (task ids hash the namespace, so a
repeat never finds the previous run's tasks):

* job creation: submit a job and get its (trivial) result back.
  Skywriting: `return 1;` (parse + compile in the driver, one script task);
  Python API: `deref(spawn(noop))`.
* per-iteration cost of a data-dependent loop, the slope between two loop
  lengths (so job creation cancels out). Skywriting:
  `do { i += 1; done = spawn(check, [i, n]); } while (!*done);` (per
  iteration a spawned closure and a continuation task that resumes the
  pickled interpreter); Python API in a driver: `while not deref(spawn(at_least,
  i, n))`; Python API inside the engine: a task tail-spawning the next
  iteration (`count_to`), no driver round trip.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musketeer.backends.ciel.engine import examples as ex  # noqa: E402
from musketeer.backends.ciel.engine.api import Client  # noqa: E402
from musketeer.backends.ciel.engine.cluster import Cluster  # noqa: E402
from musketeer.sky_cli import run_script  # noqa: E402

LOOP = """
function check(i, n) {
    return i >= n;
}
n = int(env["n"]);
i = 0;
do {
    i += 1;
    done = spawn(check, [i, n]);
} while (!*done);
return i;
"""


def timed(cluster: Cluster, fn) -> float:  # type: ignore[no-untyped-def]
    client = Client(cluster.address, cluster.token, ns=uuid.uuid4().hex, tls=False)
    try:
        start = time.perf_counter()
        fn(client)
        return time.perf_counter() - start
    finally:
        client.forget()
        client.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--iterations", default="50,250")
    a = p.parse_args()
    short, long = (int(x) for x in a.iterations.split(","))
    with tempfile.TemporaryDirectory() as tmp, Cluster(workers=2, slots=4) as cluster:
        trivial, loop = Path(tmp, "one.sky"), Path(tmp, "loop.sky")
        trivial.write_text("return 1;\n")
        loop.write_text(LOOP)

        def sky_job(c: Client) -> None:
            assert run_script(str(trivial), {}, c) == 1

        def api_job(c: Client) -> None:
            assert c.deref(c.spawn(ex.noop, 1)) == 1

        def sky_loop(n: int):  # type: ignore[no-untyped-def]
            return lambda c: run_script(str(loop), {"n": str(n)}, c) == n or sys.exit("wrong result")

        def driver_loop(n: int):  # type: ignore[no-untyped-def]
            def run(c: Client) -> None:
                i = 0
                while True:
                    i += 1
                    if c.deref(c.spawn(ex.at_least, i, n)):
                        break
                assert i == n
            return run

        def engine_loop(n: int):  # type: ignore[no-untyped-def]
            return lambda c: c.deref(c.spawn(ex.count_to, 0, n)) == n or sys.exit("wrong result")

        for warm in (sky_job, api_job, sky_loop(5), driver_loop(5), engine_loop(5)):
            timed(cluster, warm)  # imports on the workers
        rows = {name: [] for name in ("sky job", "api job", "sky short", "sky long", "driver short",
                                      "driver long", "engine short", "engine long")}
        for _ in range(a.repeat):  # interleaved, so load changes hit every variant alike
            rows["sky job"].append(timed(cluster, sky_job))
            rows["api job"].append(timed(cluster, api_job))
            rows["sky short"].append(timed(cluster, sky_loop(short)))
            rows["sky long"].append(timed(cluster, sky_loop(long)))
            rows["driver short"].append(timed(cluster, driver_loop(short)))
            rows["driver long"].append(timed(cluster, driver_loop(long)))
            rows["engine short"].append(timed(cluster, engine_loop(short)))
            rows["engine long"].append(timed(cluster, engine_loop(long)))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"median of {a.repeat}; loops of {short} and {long} iterations")
    print(f"| job creation | Skywriting `return 1;` {med['sky job'] * 1e3:.1f} ms | "
          f"Python API deref(spawn(noop)) {med['api job'] * 1e3:.1f} ms |")
    for name, label in (("sky", "Skywriting do/while (!*done)"), ("driver", "Python API, driver loop"),
                        ("engine", "Python API, tail-spawn in the engine")):
        per = (med[f"{name} long"] - med[f"{name} short"]) / (long - short)
        print(f"| {label} | {short}: {med[f'{name} short']:.3f} s | {long}: {med[f'{name} long']:.3f} s | "
              f"per iteration {per * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
