"""Wire format: length-prefixed frames, HMAC challenge-response, batched messages.

Every connection (client or worker to master, peer to worker) starts with the
same handshake on raw frames, *before* anything is unpickled:

    server -> client   MAGIC + nonce_s (32 random bytes)
    client -> server   HMAC(token, b"client" + nonce_s) + nonce_c
    server -> client   HMAC(token, b"server" + nonce_c)

so both sides prove they hold the shared token without sending it. A peer that
fails is disconnected; pre-auth frames are size-capped so an unauthenticated
peer cannot make us allocate much. After the handshake, messages are pickled
lists of tuples (a batch: the writer thread drains its queue into one frame,
which is what makes small tasks cheap under load).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import pickle
import queue
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from musketeer.backends.ciel.engine.tls import TLSConfig

MAGIC = b"CIEL1"
NONCE = 32
PREAUTH_LIMIT = 256  # bytes: the largest frame we read before authentication
HANDSHAKE_TIMEOUT = 5.0
TOKEN_ENV = "MUSKETEER_CIEL_TOKEN"
# the start of the error the master sends to waiters when no worker is left
CLUSTER_LOST = "ciel:"
_HEADER = struct.Struct("!Q")


class AuthError(ConnectionError):
    """The peer did not prove it holds the cluster token."""


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError("connection closed")
        got += k
    return bytes(buf)


def send_frame(sock: socket.socket, data: bytes) -> None:
    if len(data) < 65536:
        sock.sendall(_HEADER.pack(len(data)) + data)
    else:  # avoid copying big objects just to prepend 8 bytes
        sock.sendall(_HEADER.pack(len(data)))
        sock.sendall(data)


def recv_frame(sock: socket.socket, limit: int | None = None) -> bytes:
    (n,) = _HEADER.unpack(recv_exact(sock, _HEADER.size))
    if limit is not None and n > limit:
        raise AuthError(f"frame of {n} bytes before authentication")
    return recv_exact(sock, n)


def _mac(token: bytes, label: bytes, nonce: bytes) -> bytes:
    return hmac.new(token, label + nonce, hashlib.sha256).digest()


def server_handshake(sock: socket.socket, token: bytes) -> None:
    """Challenge the connecting peer; raises AuthError (caller closes) on failure."""
    sock.settimeout(HANDSHAKE_TIMEOUT)
    nonce = os.urandom(NONCE)
    send_frame(sock, MAGIC + nonce)
    reply = recv_frame(sock, PREAUTH_LIMIT)
    if len(reply) != 32 + NONCE or not hmac.compare_digest(reply[:32], _mac(token, b"client", nonce)):
        raise AuthError("bad token")
    send_frame(sock, _mac(token, b"server", reply[32:]))
    sock.settimeout(None)


def client_handshake(sock: socket.socket, token: bytes) -> None:
    """Answer the server's challenge and check that the server knows the token too."""
    sock.settimeout(HANDSHAKE_TIMEOUT)
    hello = recv_frame(sock, PREAUTH_LIMIT)
    if not hello.startswith(MAGIC) or len(hello) != len(MAGIC) + NONCE:
        raise AuthError("not a ciel peer")
    mine = os.urandom(NONCE)
    send_frame(sock, _mac(token, b"client", hello[len(MAGIC):]) + mine)
    try:
        proof = recv_frame(sock, PREAUTH_LIMIT)
    except ConnectionError:
        raise AuthError("the ciel peer refused our token") from None
    if not hmac.compare_digest(proof, _mac(token, b"server", mine)):
        raise AuthError("the server does not know the token")
    sock.settimeout(None)


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def connect(address: str, token: bytes, timeout: float = 5.0, tls: "TLSConfig | None" = None) -> Any:
    """An authenticated socket to `address` (HOST:PORT), inside TLS when `tls` is given."""
    sock: Any = socket.create_connection(parse_address(address), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = tls.wrap_client(sock)
        client_handshake(sock, token)
    except BaseException:
        sock.close()
        raise
    return sock


def listen(host: str, port: int) -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(128)
    return srv


#: unauthenticated connections handled at once; more are closed on arrival, so a
#: flood of them cannot use up the process's file descriptors
MAX_PREAUTH = 64
#: accept() errors that mean "out of a resource for now", not "the socket is gone"
_TRANSIENT = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED, errno.EPROTO,
              errno.EINTR, errno.EAGAIN}


def accept_loop(srv: socket.socket, token: bytes, on_peer: Callable[[socket.socket], None],
                tls: "TLSConfig | None" = None, name: str = "ciel") -> None:
    """Accept until the listening socket is closed; each peer is authenticated on
    its own thread (inside TLS when `tls` is given), then handed to `on_peer`.
    Unauthenticated peers are closed without reading more.

    Running out of file descriptors (EMFILE) or buffers is survived: the loop
    says so once on stderr, waits a little (handshakes time out and free
    descriptors) and goes on. It used to return on any OSError, which ended
    serve() and the master with exit 0 and no message."""
    preauth = threading.BoundedSemaphore(MAX_PREAUTH)
    warned = False

    def handshake(sock: socket.socket) -> None:
        try:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if tls is not None:
                    sock.settimeout(HANDSHAKE_TIMEOUT)  # a silent peer must not hold its slot forever
                    sock = tls.wrap_server(sock)
                server_handshake(sock, token)
            except (OSError, AuthError, struct.error, ValueError):
                close_quietly(sock)
                return
        finally:
            preauth.release()
        on_peer(sock)

    while True:
        try:
            sock, _ = srv.accept()
        except OSError as exc:
            if exc.errno not in _TRANSIENT:
                return  # the listening socket was closed: we are shutting down
            if not warned:
                print(f"{name}: cannot accept connections ({exc.strerror}); "
                      "waiting for unauthenticated ones to time out", file=sys.stderr, flush=True)
                warned = True
            time.sleep(0.05)
            continue
        if not preauth.acquire(blocking=False):
            close_quietly(sock)  # too many peers still proving themselves
            continue
        try:
            threading.Thread(target=handshake, args=(sock,), daemon=True).start()
        except RuntimeError:  # cannot start a thread: treat like a full table
            preauth.release()
            close_quietly(sock)


def close_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


_STOP = object()


class Connection:
    """An authenticated, message-oriented connection.

    `send()` never blocks the caller (the master calls it while holding its
    lock): messages go to a queue that a writer thread drains into one frame
    per batch. A reader thread hands each received batch to `on_batch`.
    """

    def __init__(self, sock: socket.socket, on_batch: Callable[["Connection", list[Any]], None],
                 on_close: Callable[["Connection"], None], name: str = "") -> None:
        self.sock = sock
        self.name = name
        self.closed = False
        self.info: Any = None  # what the owner knows about the peer (role, worker record)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._on_batch = on_batch
        self._on_close = on_close
        self._close_lock = threading.Lock()
        threading.Thread(target=self._write_loop, daemon=True, name=f"ciel-w-{name}").start()
        threading.Thread(target=self._read_loop, daemon=True, name=f"ciel-r-{name}").start()

    def send(self, msg: tuple[Any, ...]) -> None:
        if not self.closed:
            self._queue.put(msg)

    def _write_loop(self) -> None:
        q = self._queue
        while True:
            msg = q.get()
            if msg is _STOP:
                return
            batch = [msg]
            try:
                while len(batch) < 4096:
                    more = q.get_nowait()
                    if more is _STOP:
                        q.put(_STOP)
                        break
                    batch.append(more)
            except queue.Empty:
                pass
            try:
                send_frame(self.sock, pickle.dumps(batch, protocol=5))
            except OSError:
                self.close()
                return

    def _read_loop(self) -> None:
        try:
            while True:
                batch = pickle.loads(recv_frame(self.sock))  # authenticated peer only
                try:
                    self._on_batch(self, batch)
                except Exception:  # a bug in a handler must not silently drop the peer
                    traceback.print_exc()
        except (OSError, EOFError, ConnectionError, struct.error, pickle.UnpicklingError):
            pass
        self.close()

    def close(self) -> None:
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
        self._queue.put(_STOP)
        close_quietly(self.sock)
        self._on_close(self)


def token_bytes(token: str | None) -> bytes:
    """The token from the argument or $MUSKETEER_CIEL_TOKEN; a cluster never runs without one."""
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise AuthError(f"no cluster token: pass --token or set ${TOKEN_ENV}")
    return token.encode()
