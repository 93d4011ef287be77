"""TLS for every ciel connection (client/worker to master, peer to peer).

The HMAC handshake proves that both ends hold the cluster token, but what
follows it was plain TCP: readable, and injectable off loopback. With TLS
the handshake and all later frames run inside a mutually authenticated TLS
session. A cluster has one key pair, made by `musketeer ciel keys --out DIR`
(or by `Cluster(tls=True)` for a local one): every process presents the
certificate and trusts only it, so a peer without the key cannot even reach
the token handshake. `$MUSKETEER_CIEL_TLS=DIR` (or `--tls DIR`) turns it on.

Why not `ssl.SSLSocket`: a `Connection` reads on one thread and writes on
another, and one OpenSSL connection object must not be used by two threads
at once. `TLSSocket` drives an `ssl.SSLObject` over memory buffers instead:
OpenSSL calls are short and made under a lock, and the blocking socket I/O
happens outside it, so a reader waiting for bytes never stalls the writer.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

TLS_ENV = "MUSKETEER_CIEL_TLS"
CERT, KEY = "cluster.crt", "cluster.key"
_CHUNK = 1 << 20  # encrypt big frames a MiB at a time (memory stays flat)


class TLSError(ValueError):
    """Key files that cannot secure the cluster's connections."""


def make_keys(out_dir: str | Path, force: bool = False) -> Path:
    """A fresh self-signed P-256 certificate and key for one cluster, in `out_dir`
    (key mode 0600). Give the directory to every master, worker and client."""
    out = Path(out_dir)
    if (out / KEY).exists() and not force:
        raise TLSError(f"{out} already holds ciel keys; use --force to replace them")
    exe = shutil.which("openssl")
    if exe is None:
        raise TLSError("making ciel TLS keys needs the openssl command (not found on PATH)")
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [exe, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", KEY, "-out", CERT, "-days", "3650", "-subj", "/CN=musketeer ciel cluster"],
        cwd=out, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise TLSError(f"openssl req failed: {last}")
    os.chmod(out / KEY, 0o600)
    return out


class TLSConfig:
    """The cluster's certificate and key as a server and a client context."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        cert, key = self.directory / CERT, self.directory / KEY
        for path in (cert, key):
            if not path.is_file():
                raise TLSError(f"ciel TLS: {path} not found (make keys with `musketeer ciel keys --out DIR`)")
        try:
            self.server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.server.minimum_version = ssl.TLSVersion.TLSv1_3
            self.server.load_cert_chain(cert, key)
            self.server.load_verify_locations(cert)
            self.server.verify_mode = ssl.CERT_REQUIRED  # mutual: the client shows the same certificate
            self.client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.client.minimum_version = ssl.TLSVersion.TLSv1_3
            self.client.load_cert_chain(cert, key)
            self.client.load_verify_locations(cert)
            self.client.check_hostname = False  # one cluster identity, whatever the address
        except (ssl.SSLError, OSError) as exc:
            raise TLSError(f"ciel TLS: cannot use the keys in {self.directory}: {exc}") from None

    @classmethod
    def from_env(cls) -> "TLSConfig | None":
        directory = os.environ.get(TLS_ENV)
        return cls(directory) if directory else None

    def wrap_server(self, sock: socket.socket) -> "TLSSocket":
        return TLSSocket(sock, self.server, server_side=True)

    def wrap_client(self, sock: socket.socket) -> "TLSSocket":
        return TLSSocket(sock, self.client, server_side=False)


class TLSSocket:
    """The socket methods the engine uses (recv_into, sendall, ...) over TLS,
    safe for one reading and one writing thread at the same time."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, server_side: bool) -> None:
        self._sock = sock
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._obj = ctx.wrap_bio(self._in, self._out, server_side=server_side)
        self._ssl_lock = threading.Lock()   # every SSLObject call
        self._send_lock = threading.Lock()  # order of encrypted bytes on the wire
        try:
            self._handshake()
        except BaseException:
            sock.close()
            raise

    def _handshake(self) -> None:
        while True:
            try:
                with self._ssl_lock:
                    self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()

    def _flush(self, wait: bool = True) -> None:
        if not self._send_lock.acquire(blocking=wait):
            return  # the writer holds it and sends whatever is pending with its own bytes
        try:
            with self._ssl_lock:
                data = self._out.read()
            if data:
                self._sock.sendall(data)
        finally:
            self._send_lock.release()

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed")
        with self._ssl_lock:
            self._in.write(data)

    def recv_into(self, view: Any, n: int = 0) -> int:
        n = n or len(view)
        while True:
            with self._ssl_lock:
                try:
                    data = self._obj.read(n)
                except ssl.SSLWantReadError:
                    data = None
                except ssl.SSLZeroReturnError:
                    return 0
                pending = self._out.pending
            if data is not None:
                view[:len(data)] = data
                return len(data)
            if pending:  # e.g. a key update answer; never wait for the writer here
                self._flush(wait=False)
            try:
                self._fill()
            except ConnectionError:
                return 0

    def recv(self, n: int) -> bytes:
        buf = bytearray(n)
        k = self.recv_into(memoryview(buf), n)
        return bytes(buf[:k])

    def sendall(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        with self._send_lock:
            for start in range(0, len(view), _CHUNK):
                with self._ssl_lock:
                    self._obj.write(view[start:start + _CHUNK])
                    out = self._out.read()
                self._sock.sendall(out)

    # the rest is the plain socket's
    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def getsockname(self) -> Any:
        return self._sock.getsockname()

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    def version(self) -> str | None:
        return self._obj.version()
