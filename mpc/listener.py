"""A party's listener that only peers can disturb.

MPyC's server trusts whatever connects to its port: the first two bytes
are taken as the peer's party index (junk bytes raised IndexError inside
MPyC, with a traceback on stderr), and a connection that closed before
saying anything was treated as a peer leaving, which aborted the whole
computation. A port scan or a load balancer's health check was enough.

`guarded_exchanger` subclasses MPyC's `MessageExchanger` (its connection
protocol) so that a connection must earn its place before MPyC sees a
byte of it:

1. the connecting side sends a greeting, `MAGIC` and the session's
   fingerprint (a hash of the split plan: the query, the parties and the
   trust config), before MPyC's own hello; anything else is ignored and
   the connection closed;
2. the party index in MPyC's hello must be one this party listens for
   (a lower index) and not connected already;
3. a connection that closes or fails before (1) and (2) is logged and
   forgotten, never reported as a peer leaving.

Ignored connections are logged as one stderr line each (the first
`LOG_LIMIT`, then a count), never a traceback. Without TLS this stops
scans, junk and parties running another query; it does not stop an
attacker who knows the query (use TLS across machines: its mutual
certificates are the authentication, and connections failing the TLS
handshake are logged the same way).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

MAGIC = b"MUSKETEER-MPC/1 "
LOG_LIMIT = 10


def fingerprint(plan_text: str) -> bytes:
    """16 bytes every party of one session computes alike."""
    return hashlib.sha256(plan_text.encode("utf-8")).digest()[:16]


class _Log:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say, self.count = say, 0

    def ignored(self, peer: Any, why: str) -> None:
        self.count += 1
        if self.count <= LOG_LIMIT:
            where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "an unknown address"
            self.say(f"ignored a connection from {where}: {why}")
        elif self.count == LOG_LIMIT + 1:
            self.say("ignoring more connections that are not peers (not logged further)")


def guarded_exchanger(base: type, *, session: bytes, say: Callable[[str], None],
                      lost: Callable[[Any, Any], None]) -> type:
    """A `MessageExchanger` subclass for this session. `say` logs one line;
    `lost(protocol, exc)` is called when an identified peer's connection
    ends (the runtime decides whether that aborts)."""
    greeting = MAGIC + session
    log = _Log(say)

    class Guarded(base):  # type: ignore[misc, valid-type]
        # no __slots__: the base has them, this adds a __dict__ for our state
        def __init__(self, rt: Any, peer_pid: int | None = None) -> None:
            super().__init__(rt, peer_pid)
            self.greeted = peer_pid is not None  # we connected out: the peer is the one we dialled
            self.ignored = False
            self.address: Any = None

        def connection_made(self, transport: Any) -> None:
            self.address = transport.get_extra_info("peername")
            if self.peer_pid is not None:
                transport.write(greeting)
            super().connection_made(transport)

        def _ignore(self, why: str) -> None:
            self.ignored = True
            log.ignored(self.address, why)
            if self.transport is not None:
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self.ignored:
                return
            if not self.greeted:
                got = bytes(self.bytes) + bytes(data)
                head = got[: len(greeting)]
                if not greeting.startswith(head):
                    k = min(len(head), len(MAGIC))
                    self._ignore("a Musketeer MPC party of another session (the query or the parties config "
                                 "differ)" if head[:k] == MAGIC[:k] else "not a Musketeer MPC peer")
                    return
                if len(got) < len(greeting):
                    self.bytes = bytearray(got)
                    return
                self.greeted = True
                self.bytes = bytearray()
                data = got[len(greeting):]
            if self.peer_pid is None:
                got = bytes(self.bytes) + bytes(data)
                if len(got) >= 2:
                    pid = int.from_bytes(got[:2], "little")
                    rt = self.runtime
                    if not 0 <= pid < rt.pid:
                        self._ignore(f"claims party index {pid}, which does not connect to this party")
                        return
                    if rt.parties[pid].protocol is not None:
                        self._ignore(f"claims party index {pid}, which is connected already")
                        return
            super().data_received(data)

        def connection_lost(self, exc: Any) -> None:
            if self.ignored:
                return
            if self.peer_pid is None or not self.greeted:
                log.ignored(self.address, "closed before identifying itself as a peer")
                return
            lost(self, exc)

    Guarded.__name__ = Guarded.__qualname__ = "GuardedMessageExchanger"
    return Guarded


def log_tls_handshake_failures(say: Callable[[str], None]) -> None:
    """asyncio drops a server-side TLS handshake failure silently (an
    SSLError is an OSError); log it like any other ignored connection."""
    try:
        from asyncio import sslproto
    except ImportError:  # pragma: no cover
        return
    original = getattr(sslproto.SSLProtocol, "_on_handshake_complete", None)
    if original is None or getattr(original, "_musketeer", False):
        return
    log = _Log(say)

    def on_handshake_complete(self: Any, exc: Any) -> Any:
        if exc is not None and getattr(self, "_server_side", False):
            transport = getattr(self, "_transport", None)
            peer = transport.get_extra_info("peername") if transport is not None else None
            log.ignored(peer, f"TLS handshake failed ({getattr(exc, 'reason', None) or type(exc).__name__})")
        return original(self, exc)

    on_handshake_complete._musketeer = True  # type: ignore[attr-defined]
    sslproto.SSLProtocol._on_handshake_complete = on_handshake_complete
