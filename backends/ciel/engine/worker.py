"""A worker: runs tasks in a few slots, stores their outputs, serves them to peers.

Tasks run on pool threads in this process. A task that blocks in `deref`
tells the master (`block`) and the pool starts another thread, so the number
of *runnable* tasks stays at `slots` and a tree of tasks all waiting on their
children cannot deadlock the worker. Outputs go to the local ObjectStore and
only their size (plus the bytes, when small) to the master; peers fetch big
objects straight from here.
"""

from __future__ import annotations

import argparse
import os
import pickle
import queue
import socket
import sys
import tempfile
import threading
import time
import traceback
import types
from typing import Any

from musketeer.backends.ciel.engine import api
from musketeer.backends.ciel.engine.master import INLINE, _watch_parent
from musketeer.backends.ciel.engine.peers import PeerPool, serve_peer
from musketeer.backends.ciel.engine.protocol import accept_loop, listen, token_bytes
from musketeer.backends.ciel.engine.store import ObjectStore
from musketeer.backends.ciel.engine.tls import TLS_ENV, TLSConfig


#: how a failure of the worker itself (not of the task's code) starts
WORKER_ERROR = "ciel: worker"


class _TaskRuntime(api.Runtime):
    """spawn/deref as seen from inside one running task."""

    def __init__(self, worker: "Worker", ns: str, tid: str) -> None:
        self.worker = worker
        self.ns = ns
        self.tid = tid
        self.link = worker.link
        self.peers = worker.peers
        self.store = worker.store

    def _blocking(self, on: bool) -> None:
        self.worker.set_blocked(self.tid, on)

    def _send_spawn(self, msg: tuple[Any, ...]) -> None:
        # kept until the master acks this task's end: a master restarted while
        # the task runs gets its spawns again (they used to vanish with the old socket)
        self.link.send_tracked(self.tid, msg)


class Worker:
    def __init__(self, master: str, token: bytes, host: str = "127.0.0.1", port: int = 0, slots: int = 4,
                 spill_dir: str | None = None, spill_threshold: int = 64 << 20,
                 heartbeat: float = 0.5, reconnect_timeout: float = 30.0, tls: Any = None) -> None:
        self.token = token
        self.tls = tls
        self.slots = slots
        self.server = listen(host, port)
        self.address = f"{host}:{self.server.getsockname()[1]}"
        self.store = ObjectStore(spill_dir or tempfile.mkdtemp(prefix="ciel-spill-"), spill_threshold)
        self.peers = PeerPool(token, tls)
        # tasks queued or running here: the master may hand us one again (after it
        # dropped and re-admitted us, or after a restart); running it a second time
        # at once made two puts of one ref race in the store
        self._active: set[str] = set()
        self._fetches: dict[str, list[Any]] = {}  # ref -> [lock, users]: one fetch of a ref at a time
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._pool_lock = threading.Lock()
        self._threads = 0
        self._blocked = 0
        self.heartbeat = heartbeat
        threading.Thread(target=accept_loop, args=(self.server, token, self._on_peer, tls, "ciel worker"),
                         daemon=True).start()
        self.link = api.MasterLink(master, token, self._hello, self._on_message, reconnect_timeout,
                                   on_lost=lambda: os._exit(3), tls=tls, hello_tail=self._held)
        for _ in range(slots):
            self._start_thread()
        threading.Thread(target=self._heartbeat, daemon=True).start()

    def _hello(self) -> list[tuple[Any, ...]]:
        with self._pool_lock:
            running, blocked = sorted(self._active), self._blocked
        return [("hello", "worker", {"address": self.address, "slots": self.slots, "running": running,
                                     "blocked": blocked})]

    def _held(self) -> list[tuple[Any, ...]]:
        """Sent after the re-sent spawns: the master must know a task's children
        before it publishes the task's output (a dict of their refs, say)."""
        return [("held", self.store.sizes())]

    def _on_peer(self, sock: socket.socket) -> None:
        serve_peer(sock, self.store.get)

    def _heartbeat(self) -> None:
        while True:
            time.sleep(self.heartbeat)
            self.link.send(("hb",))

    def _on_message(self, msg: tuple[Any, ...]) -> None:
        if msg[0] == "run":
            with self._pool_lock:
                if msg[1] in self._active:
                    return  # already queued or running here; that run will report
                self._active.add(msg[1])
            self._queue.put(msg)
        elif msg[0] == "drop":  # a finished job's objects
            self.store.delete(msg[1])
        elif msg[0] == "module":
            self._load_module(msg[1], msg[2])
        elif msg[0] == "error":
            print(f"ciel worker: master says: {msg[1]}", file=sys.stderr)

    @staticmethod
    def _load_module(name: str, source: str) -> None:
        """A program shipped by an authenticated client becomes an importable module,
        so its module-level functions can be named as tasks."""
        if name in sys.modules:
            return
        module = types.ModuleType(name)
        module.__dict__["__ciel_module__"] = name
        module.__file__ = f"<ciel module {name}>"
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - authenticated peer
        sys.modules[name] = module

    # --- the pool ------------------------------------------------------------------
    def _start_thread(self) -> None:
        self._threads += 1
        threading.Thread(target=self._pool_loop, daemon=True).start()

    def set_blocked(self, tid: str, blocked: bool) -> None:
        """A task waits in deref: free its slot (start a thread) and tell the master."""
        with self._pool_lock:
            if blocked:
                self._blocked += 1
                if self._threads - self._blocked < self.slots:
                    self._start_thread()
            else:
                self._blocked -= 1
        self.link.send(("block" if blocked else "unblock", tid))

    def _pool_loop(self) -> None:
        while True:
            msg = self._queue.get()
            self._execute(*msg[1:])
            with self._pool_lock:
                if self._threads - self._blocked > self.slots:
                    self._threads -= 1
                    return

    def _fetch(self, ref: str, holders: list[str]) -> bytes | list[str]:
        """An input's bytes from the store or a holder (then kept here); the
        holders that failed if none had it. One fetch per ref at a time: tasks
        sharing a big input (a broadcast join side) used to fetch it at once
        and race to store it."""
        with self._pool_lock:
            entry = self._fetches.setdefault(ref, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                data = self.store.get(ref)
                if data is not None:
                    return data
                data, failed = self.peers.fetch_any(holders, ref)
                if data is None:
                    return failed
                try:
                    self.store.put(ref, data)
                except OSError:
                    pass  # only a cache of a peer's object: the task can still run
                return data
        finally:
            with self._pool_lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._fetches[ref]

    def _execute(self, tid: str, ns: str, fn: str, blob: bytes, deps: dict[str, tuple[Any, ...]]) -> None:
        try:
            self._run_task(tid, ns, fn, blob, deps)
        finally:
            with self._pool_lock:
                self._active.discard(tid)

    def _run_task(self, tid: str, ns: str, fn: str, blob: bytes, deps: dict[str, tuple[Any, ...]]) -> None:
        def send(msg: tuple[Any, ...]) -> None:
            self.link.send_tracked(tid, msg)

        try:
            values: dict[str, Any] = {}
            for dep, (target, holders, inline, error) in deps.items():
                if error is not None:
                    raise api.TaskError(f"input {dep[:12]} failed:\n{error}")
                data = inline if inline is not None else self._fetch(target, holders)
                if isinstance(data, list):  # every holder failed
                    send(("lost", tid, target, data))
                    return
                values[dep] = pickle.loads(data)
            args = [values[a.id] if isinstance(a, api.Ref) else a for a in pickle.loads(blob)]
            func = api.resolve_function(fn)
            api._local.runtime = _TaskRuntime(self, ns, tid)
            try:
                result = func(*args)
            finally:
                api._local.runtime = None
            if isinstance(result, api.Ref):
                send(("done", tid, 0, None, result.id))
                return
            data = pickle.dumps(result, protocol=5)
        except api.MasterLost:
            return
        except Exception:
            send(("failed", tid, traceback.format_exc(limit=20)))
            return
        try:
            self.store.put(tid, data)
        except OSError as exc:  # the worker's own failure, not the task's: say so in one line
            send(("failed", tid, f"{WORKER_ERROR} {self.address} could not store the output of {fn}: "
                                 f"{type(exc).__name__}: {exc}"))
            return
        send(("done", tid, len(data), data if len(data) <= INLINE else None, None))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="ciel-worker")
    p.add_argument("--master", required=True, help="HOST:PORT of the master")
    p.add_argument("--host", default="127.0.0.1", help="address peers reach this worker on")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--token")
    p.add_argument("--spill-dir")
    p.add_argument("--spill-threshold", type=int, default=64 << 20)
    p.add_argument("--parent-pid", type=int)
    p.add_argument("--tls", metavar="DIR", help=f"cluster TLS keys (default ${TLS_ENV}; plain TCP if unset)")
    a = p.parse_args(argv)
    if a.parent_pid:
        threading.Thread(target=_watch_parent, args=(a.parent_pid,), daemon=True).start()
    tls = TLSConfig(a.tls) if a.tls else TLSConfig.from_env()
    w = Worker(a.master, token_bytes(a.token), a.host, a.port, a.slots, a.spill_dir, a.spill_threshold, tls=tls)
    print(f"CIEL-WORKER {w.address}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
