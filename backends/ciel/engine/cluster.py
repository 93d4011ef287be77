"""`Cluster(workers=N)`: a master and N worker processes on localhost.

For tests, the CLI and the backend when no `--ciel-master` is given. It is a
context manager that always cleans up: processes are killed on exit, and
each child also watches this process and exits if it disappears, so a
crashed test run leaves nothing behind. The token is random per cluster and
reaches children through the environment (not argv, which `ps` shows).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from musketeer.backends.ciel.engine.api import Client, ClusterLost
from musketeer.backends.ciel.engine.protocol import CLUSTER_LOST, TOKEN_ENV
from musketeer.backends.ciel.engine.tls import TLS_ENV, TLSConfig, make_keys

ROOT = Path(__file__).resolve().parents[3]  # the repository: children import backends.ciel from here


class Cluster:
    def __init__(self, workers: int = 2, slots: int = 4, token: str | None = None, host: str = "127.0.0.1",
                 spill_threshold: int = 64 << 20, journal: bool = True, heartbeat_timeout: float = 30.0,
                 grace: float = 0.5, worker_grace: float = 2.0, tls: bool = False) -> None:
        """`tls=True`: make keys for this cluster and run every connection over TLS."""
        self.n_workers = workers
        self.slots = slots
        self.token = token or secrets.token_hex(16)
        self.host = host
        self.spill_threshold = spill_threshold
        self.heartbeat_timeout = heartbeat_timeout
        self.grace = grace
        self.worker_grace = worker_grace
        self.dir = Path(tempfile.mkdtemp(prefix="ciel-cluster-"))
        self.journal = str(self.dir / "master.journal") if journal else None
        self.tls: TLSConfig | None = TLSConfig(make_keys(self.dir / "tls")) if tls else None
        self.port = 0
        self.master: subprocess.Popen[str] | None = None
        self.workers: list[subprocess.Popen[str]] = []
        self.worker_addresses: list[str] = []
        self._client: Client | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[TOKEN_ENV] = self.token
        if self.tls is not None:
            env[TLS_ENV] = str(self.tls.directory)
        else:
            env.pop(TLS_ENV, None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        return env

    def _popen(self, module: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", module, "--parent-pid", str(os.getpid()), *args],
            stdout=subprocess.PIPE, env=self._env(), cwd=str(ROOT), text=True)

    @staticmethod
    def _started(proc: subprocess.Popen[str]) -> str | None:
        """The address a child announces ("CIEL-MASTER <port>" / "CIEL-WORKER <address>"),
        or None if it ended first."""
        assert proc.stdout is not None
        line = proc.stdout.readline()
        return line.split()[1] if line.startswith("CIEL-") else None

    def _spawn(self, module: str, *args: str) -> tuple[subprocess.Popen[str], str]:
        proc = self._popen(module, *args)
        announced = self._started(proc)
        if announced is None:
            proc.kill()
            raise RuntimeError(f"{module} did not start (exit code {proc.wait()})")
        return proc, announced

    def start(self) -> "Cluster":
        """Start the master and the workers; wait until every live worker has joined.

        A worker that dies while the cluster starts (killed, out of memory) is
        not an internal error: once no worker is left, `start` raises
        `ClusterLost` with the same one line a job gets when its workers die
        (it used to be "RuntimeError: ... worker did not start"). Survivors run
        the job on their own."""
        try:
            self.start_master()
            for _ in range(self.n_workers):
                self.add_worker(required=False)
            self._wait_for_live_workers()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_for_live_workers(self, timeout: float = 60.0) -> None:
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            alive = [p for p in self.workers if p.poll() is None]
            if not alive:
                raise ClusterLost(f"{CLUSTER_LOST} all {len(self.workers)} workers died ({self.deaths()}); "
                                  "job aborted")
            if len(client.info()["workers"]) >= len(alive):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {len(alive)} ciel workers joined in {timeout:.0f}s")
            time.sleep(0.05)

    def start_master(self) -> None:
        args = ["--host", self.host, "--port", str(self.port),
                "--heartbeat-timeout", str(self.heartbeat_timeout), "--grace", str(self.grace),
                "--worker-grace", str(self.worker_grace)]
        if self.journal:
            args += ["--journal", self.journal]
        self.master, port = self._spawn("musketeer.backends.ciel.engine.master", *args)
        self.port = int(port)

    def add_worker(self, required: bool = True) -> str:
        """Start one more worker; its address ("" if it died before announcing
        itself and not `required`)."""
        i = len(self.workers)
        proc = self._popen(
            "musketeer.backends.ciel.engine.worker", "--master", self.address, "--host", self.host,
            "--slots", str(self.slots), "--spill-dir", str(self.dir / f"spill-{i}"),
            "--spill-threshold", str(self.spill_threshold))
        self.workers.append(proc)
        address = self._started(proc)
        if address is None:
            proc.wait()
            if required:
                raise RuntimeError(f"ciel worker {i} did not start ({self.deaths()})")
            address = ""
        self.worker_addresses.append(address)
        return address

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker `i` (no goodbye: the master finds out from the dropped socket)."""
        _kill(self.workers[i])

    def deaths(self) -> str:
        """How this cluster's dead workers ended ("worker 1 exit -9: killed, ..."),
        which only the parent process can tell: the master sees dropped sockets."""
        out = []
        for i, proc in enumerate(self.workers):
            code = proc.poll()
            if code is not None:
                out.append(f"worker {i} exit {code}: {_exit_reason(code)}")
        return "; ".join(out)

    def kill_master(self) -> None:
        if self.master is not None:
            _kill(self.master)

    def restart_master(self) -> None:
        """A new master on the same port, resuming from the journal."""
        self.kill_master()
        self.start_master()

    def client(self, **kwargs: Any) -> Client:
        """A client of this cluster (one shared one without arguments)."""
        if kwargs:
            return Client(self.address, self.token, **{"tls": self.tls or False, **kwargs})
        if self._client is None:
            self._client = Client(self.address, self.token, tls=self.tls or False)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client._shutdown = True
            self._client.link._shutdown = True
            self._client.close()
            self._client = None
        for proc in [*self.workers, *([self.master] if self.master else [])]:
            _kill(proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _exit_reason(code: int) -> str:
    if code == -signal.SIGKILL:
        return "killed, possibly out of memory"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return "exited"


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
