"""Start every party of a joint query as its own OS process on this machine
(demo, tests, benchmark). Each process is exactly `musketeer mpc run`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1, below the ephemeral range.

    Why not bind port 0: the OS hands that out from the ephemeral range,
    which every outgoing connection (MPyC's clients included) also draws
    from, so between this call and the party's own bind another process
    could take the port, and parallel tests would clash now and then."""
    import random

    low = _ephemeral_low()
    candidates = list(range(20000, low)) if low > 20000 + 10 * n else []
    random.shuffle(candidates)
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        for port in candidates:
            if len(ports) == n:
                break
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(port)
        while len(ports) < n:  # no room below the ephemeral range: let the OS choose
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


@dataclass
class PartyRun:
    party: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def launch(query: str, parties_toml: str, parties: list[str], *, mpc_only: bool = False,
           extra: list[str] | None = None, env: dict[str, dict[str, str]] | None = None) -> dict[str, subprocess.Popen]:
    procs = {}
    for p in parties:
        cmd = [sys.executable, "-m", "musketeer", "mpc", "run", query, "--parties", parties_toml,
               "--party", p, "--metrics", *(["--mpc-only"] if mpc_only else []), *(extra or [])]
        procs[p] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env={**os.environ, **env.get(p, {})} if env else None)
    return procs


def wait_all(procs: dict[str, subprocess.Popen], timeout: float = 300.0) -> dict[str, PartyRun]:
    start = time.perf_counter()
    out: dict[str, PartyRun] = {}
    try:
        for p, proc in procs.items():
            left = max(1.0, timeout - (time.perf_counter() - start))
            so, se = proc.communicate(timeout=left)
            out[p] = PartyRun(p, proc.returncode, so, se, time.perf_counter() - start)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


def run_all(query: str, parties_toml: str, parties: list[str], **kw) -> dict[str, PartyRun]:
    timeout = kw.pop("timeout", 300.0)
    env = kw.pop("env", None)
    return wait_all(launch(query, parties_toml, parties, env=env, **kw), timeout)


def metrics(stderr: str) -> dict[str, float]:
    """The `--metrics` line: local_seconds=.. secure_seconds=.."""
    for line in stderr.splitlines():
        if "secure_seconds=" in line:
            return {k: float(v) for k, v in (kv.split("=") for kv in line.split())}
    return {}
