"""A party's listener ignores anything that is not an authenticated peer
(issue #15): port scans, health checks, junk bytes, a fake MPyC hello and
a Musketeer party of another session never end a computation, with and
without TLS; each is logged as one line, and stderr has no traceback.
The answer is still DuckDB's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from musketeer.mpc.config import load_config
from musketeer.mpc.examples.data import SCENARIOS, write_scenario
from musketeer.mpc.launch import free_ports, launch, wait_all
from musketeer.mpc.listener import MAGIC
from tests.mpc_helpers import cleartext_answer, same_answer

ROOT = Path(__file__).parent.parent


def _junk(port: int) -> int:
    """Every kind of stranger, once each, against 127.0.0.1:port; returns
    how many connections were made."""
    made = 0
    payloads = [
        b"",  # a port scan: connect, close
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # a health check
        os.urandom(64),  # noise
        b"\x00\x00" + os.urandom(40),  # a fake MPyC hello claiming party 0
        b"\xff\x7f",  # a party index out of range
        MAGIC + b"\x00" * 16 + b"\x00\x00",  # a Musketeer party of another session
        MAGIC[:5],  # half a greeting, then gone
    ]
    for data in payloads:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                made += 1
                if data:
                    s.sendall(data)
                time.sleep(0.05)
        except OSError:
            pass
    return made


def _wait_listening(port: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


def _run_with_strangers(tmp_path: Path, tls: bool) -> None:
    ports = free_ports(3)
    config = write_scenario("patients", str(tmp_path / "p"), 30, ports)
    query = os.path.join(os.path.dirname(config), "query.sql")
    parties = list(SCENARIOS["patients"].parties)
    extra = ["--timeout", "120", "--output", str(tmp_path / "r.parquet")]
    if tls:
        keys = tmp_path / "keys"
        proc = subprocess.run([sys.executable, "-m", "musketeer", "mpc", "keys", "--parties", config, "--out",
                               str(keys)], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        extra += ["--tls", "--keys", str(keys)]
    # parties 1 and 2 listen (MPyC: a party listens for the lower indices);
    # strangers hit them before party 0 connects
    procs = launch(query, config, parties[1:], extra=extra)
    for port in ports[1:]:
        _wait_listening(port)
        assert _junk(port) >= 5
    procs.update(launch(query, config, parties[:1], extra=extra))
    runs = wait_all(procs, timeout=300)
    for p, r in runs.items():
        assert r.returncode == 0, (p, r.stderr)
        assert "Traceback" not in r.stderr, r.stderr
        for line in r.stderr.strip().splitlines():  # one line per ignored connection, and the metrics
            assert ("ignor" in line and line.startswith(f"musketeer: mpc: party {p}: ")
                    or line.startswith("local_seconds=")), line
    for p in parties[1:]:
        assert "ignored a connection from 127.0.0.1:" in runs[p].stderr, runs[p].stderr
    got = pd.read_parquet(tmp_path / "r.parquet")
    assert same_answer(got, cleartext_answer(query, load_config(config)))


def test_strangers_do_not_end_a_plain_tcp_run(tmp_path: Path) -> None:
    _run_with_strangers(tmp_path, tls=False)


def test_strangers_do_not_end_a_tls_run(tmp_path: Path) -> None:
    _run_with_strangers(tmp_path, tls=True)
