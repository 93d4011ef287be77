"""Worker-to-worker (and client-to-worker) object transfer.

Objects move between the processes that hold and need them directly, never
through the master: a worker serves `get REF` requests on its peer port, and
fetchers keep a few authenticated sockets per peer for reuse. Requests are
raw frames (the ref id), replies are a status byte plus the pickled object,
so the server unpickles nothing a peer sends.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from musketeer.backends.ciel.engine.protocol import close_quietly, connect, recv_frame, send_frame


def serve_peer(sock: socket.socket, lookup: Callable[[str], bytes | None]) -> None:
    """Answer get requests on one authenticated peer socket until it closes."""
    try:
        while True:
            ref = recv_frame(sock, 256).decode("ascii", "replace")
            data = lookup(ref)
            send_frame(sock, b"\x00" if data is None else b"\x01" + data)
    except (OSError, ConnectionError):
        pass
    close_quietly(sock)


class PeerPool:
    """Fetch objects from peers, reusing connections."""

    def __init__(self, token: bytes, tls: Any = None) -> None:
        self.token = token
        self.tls = tls  # a TLSConfig, or None for plain TCP
        self._idle: dict[str, list[socket.socket]] = {}
        self._lock = threading.Lock()

    def fetch(self, address: str, ref: str) -> bytes | None:
        """The object's pickled bytes, or None if the peer is gone or lacks it."""
        with self._lock:
            pool = self._idle.get(address)
            sock = pool.pop() if pool else None
        try:
            if sock is None:
                sock = connect(address, self.token, timeout=2.0, tls=self.tls)
            sock.settimeout(60.0)
            send_frame(sock, ref.encode("ascii"))
            reply = recv_frame(sock)
        except (OSError, ConnectionError):
            if sock is not None:
                close_quietly(sock)
            return None
        with self._lock:
            self._idle.setdefault(address, []).append(sock)
        return reply[1:] if reply[:1] == b"\x01" else None

    def fetch_any(self, holders: list[str], ref: str) -> tuple[bytes | None, list[str]]:
        """Try each holder in turn: (bytes or None, holders that failed)."""
        failed = []
        for address in holders:
            data = self.fetch(address, ref)
            if data is not None:
                return data, failed
            failed.append(address)
        return None, failed

    def close(self) -> None:
        with self._lock:
            socks = [s for pool in self._idle.values() for s in pool]
            self._idle.clear()
        for s in socks:
            close_quietly(s)
