"""Is dask installed, and does the scheduler the user named answer?

Kept apart from codegen so `available()` answers quickly: nothing here
imports dask itself.
"""

from __future__ import annotations

import importlib.util
import socket
from urllib.parse import urlsplit

#: Seconds to wait for a TCP connection to the scheduler.
CONNECT_TIMEOUT = 2.0
INSTALL_HINT = "dask is not installed: pip install 'musketeer[dask]'"


def missing_packages() -> list[str]:
    """The packages generated dask programs need that cannot be imported."""
    needed = ("dask", "distributed", "pandas", "pyarrow", "numpy")
    return [name for name in needed if importlib.util.find_spec(name) is None]


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) of `tcp://HOST:PORT` (or `HOST:PORT`); ValueError otherwise."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ValueError(address)
    return parts.hostname, parts.port


def scheduler_problem(address: str | None) -> str:
    """'' when `address` is None or a scheduler accepts connections there,
    else one line saying what is wrong."""
    if not address:
        return ""
    try:
        host, port = parse_address(address)
    except ValueError:
        return f"--dask-scheduler expects tcp://HOST:PORT, got {address!r}"
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return ""
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"no dask scheduler answers at {address} ({reason}); start one with `dask scheduler`"
