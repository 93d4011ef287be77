"""The task API (Skywriting in Python): `spawn`, `deref`, `Ref`, and `Client`.

Inside a task and in a driver holding a `Client`, the same two calls build
the dynamic task graph:

    ref = spawn(fn, *args)    # a future; Ref args are the task's dependencies
    value = deref(ref)        # blocks until ready (a task gives up its slot meanwhile)

A task may also *return* a Ref: its output is then whatever that ref's task
produces (tail-spawn), which is how loops run without a driver or a blocked
slot. `fn` is named, never pickled: `module:qualname` of a module-level
function that workers import. Task ids are a hash of the job namespace, the
function name and the pickled arguments (refs by id), so spawning the same
task twice, or re-running a parent after a failure, names the same task.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from musketeer.backends.ciel.engine.peers import PeerPool
from musketeer.backends.ciel.engine.protocol import (
    CLUSTER_LOST,
    AuthError,
    Connection,
    connect,
    token_bytes,
)


class Ref:
    """A future: the output of the task with this id."""

    __slots__ = ("id",)

    def __init__(self, id: str) -> None:
        self.id = id

    def __repr__(self) -> str:
        return f"Ref({self.id[:12]})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Ref, (self.id,))


class TaskError(RuntimeError):
    """A task raised: its traceback text, re-raised wherever its output is dereferenced."""


class ClusterLost(TaskError):
    """Every worker died and none rejoined in time: the master aborted the job."""


class MasterLost(ConnectionError):
    """The master went away and did not come back in time."""


def function_name(fn: Callable[..., Any] | str) -> str:
    """`module:qualname` for a module-level function (workers import it by name)."""
    if isinstance(fn, str):
        module, sep, qual = fn.partition(":")
        if not sep or not module or not qual:
            raise ValueError(f"task functions are named 'module:qualname', got {fn!r}")
        return fn
    module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qual:
        raise ValueError(f"{fn!r} is not an importable module-level function; "
                         "workers import tasks by name, so define it at the top of a module")
    return f"{module}:{qual}"


def resolve_function(name: str) -> Callable[..., Any]:
    module_name, _, qual = name.partition(":")
    # import_module, not sys.modules.get: on a fresh worker several pool threads
    # resolve at once, and sys.modules holds a module still being initialised
    # (import_module waits for it; the lookup handed out a half-imported module)
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in qual.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{name} is not callable")
    return obj


def task_id(ns: str, fn: str, blob: bytes) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(ns.encode())
    h.update(b"\0")
    h.update(fn.encode())
    h.update(b"\0")
    h.update(blob)
    return h.hexdigest()


def encode_args(args: tuple[Any, ...]) -> tuple[bytes, list[str]]:
    """Pickled arguments plus the ids of top-level Ref arguments (the dependencies:
    they are resolved to values before the task runs; nested Refs stay Refs)."""
    return pickle.dumps(args, protocol=5), [a.id for a in args if isinstance(a, Ref)]


# --- the runtime a spawn/deref call talks to ------------------------------------------

_local = threading.local()
_default: "Runtime | None" = None


class _Reply:
    __slots__ = ("event", "value")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: Any = None


class MasterLink:
    """A connection to the master that survives master restarts.

    Pending `where` requests are re-sent after reconnecting, so a client or a
    blocked task just waits longer when the master is restarted from its journal.
    """

    def __init__(self, address: str, token: bytes, hello: Callable[[], list[tuple[Any, ...]]],
                 on_message: Callable[[tuple[Any, ...]], None], reconnect_timeout: float = 30.0,
                 on_lost: Callable[[], None] | None = None, tls: Any = None,
                 hello_tail: Callable[[], list[tuple[Any, ...]]] | None = None) -> None:
        self.address = address
        self.token = token
        self.tls = tls
        self._hello = hello
        self._hello_tail = hello_tail
        self._on_message = on_message
        self._on_lost = on_lost
        self.reconnect_timeout = reconnect_timeout
        self._pending: dict[int, tuple[_Reply, tuple[Any, ...]]] = {}
        # messages the master has not confirmed journaling (a task's spawns and its
        # done), by task: re-sent after a reconnect, dropped on the master's "ack"
        self._tracked: dict[str, list[tuple[Any, ...]]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._shutdown = False
        self.lost = False
        self.conn = self._connect(timeout=reconnect_timeout)

    def _connect(self, timeout: float) -> Connection:
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = connect(self.address, self.token, tls=self.tls)
                break
            except AuthError:
                raise
            except OSError:
                if time.monotonic() > deadline or self._shutdown:
                    raise MasterLost(f"cannot reach the ciel master at {self.address}") from None
                time.sleep(0.05)
        conn = Connection(sock, self._on_batch, self._on_close, name="master")
        # Under the lock: a tracked send either happened before (and is re-sent
        # here) or goes to the new connection after these; none falls in between
        # into the closed one (that is how a restart lost a running task's spawns).
        with self._lock:
            self.conn = conn
            for msg in self._hello():
                conn.send(msg)
            for msgs in self._tracked.values():
                for msg in msgs:
                    conn.send(msg)
            for msg in self._hello_tail() if self._hello_tail is not None else ():
                conn.send(msg)
            for _, msg in self._pending.values():
                conn.send(msg)
        return conn

    def _on_batch(self, conn: Connection, batch: list[tuple[Any, ...]]) -> None:
        for msg in batch:
            if msg[0] in ("at", "reply"):
                with self._lock:
                    entry = self._pending.pop(msg[1], None)
                if entry is not None:
                    entry[0].value = msg[2:]
                    entry[0].event.set()
            elif msg[0] == "ack":
                with self._lock:
                    self._tracked.pop(msg[1], None)
            else:
                self._on_message(msg)

    def send_tracked(self, key: str, msg: tuple[Any, ...]) -> None:
        """Send, and keep re-sending after reconnects until the master acks `key`."""
        with self._lock:
            self._tracked.setdefault(key, []).append(msg)
            self.conn.send(msg)

    def _on_close(self, conn: Connection) -> None:
        if self._shutdown:
            return
        threading.Thread(target=self._reconnect, daemon=True).start()

    def _reconnect(self) -> None:
        try:
            self.conn = self._connect(self.reconnect_timeout)
        except (MasterLost, AuthError):
            self.lost = True
            with self._lock:
                pending = list(self._pending.values())
                self._pending.clear()
            for reply, _ in pending:
                reply.value = None
                reply.event.set()
            if self._on_lost is not None:
                self._on_lost()

    def send(self, msg: tuple[Any, ...]) -> None:
        with self._lock:
            conn = self.conn
        conn.send(msg)

    def request(self, kind: str, *args: Any) -> _Reply:
        """Send ("kind", req_id, *args); the master answers ("at"|"reply", req_id, ...)."""
        if self._shutdown or self.lost:
            raise MasterLost("this client is closed" if self._shutdown else f"lost the master at {self.address}")
        reply = _Reply()
        req = next(self._ids)
        msg = (kind, req, *args)
        with self._lock:
            self._pending[req] = (reply, msg)
            self.conn.send(msg)
        return reply

    def wait(self, reply: _Reply, timeout: float | None = None) -> tuple[Any, ...]:
        if not reply.event.wait(timeout):
            raise TimeoutError("no answer from the ciel master")
        if reply.value is None:
            raise MasterLost(f"lost the ciel master at {self.address}")
        return reply.value

    def close(self) -> None:
        self._shutdown = True
        self.conn.close()


class Runtime:
    """What spawn/deref talk to: a driver's Client or a worker's running task."""

    ns: str
    link: MasterLink
    peers: PeerPool
    store: Any = None  # a worker's ObjectStore (local hits skip the network)

    def _blocking(self, on: bool) -> None:
        """A worker releases the task's slot while it waits; a client does nothing."""

    def spawn(self, fn: Callable[..., Any] | str, *args: Any) -> Ref:
        name = function_name(fn)
        blob, deps = encode_args(args)
        tid = task_id(self.ns, name, blob)
        self._send_spawn(("spawn", tid, self.ns, name, blob, deps))
        return Ref(tid)

    def _send_spawn(self, msg: tuple[Any, ...]) -> None:
        self.link.send(msg)

    def deref(self, ref: Ref, timeout: float | None = None) -> Any:
        return self.deref_many([ref], timeout)[0]

    def deref_many(self, refs: Iterable[Ref], timeout: float | None = None) -> list[Any]:
        """Values of several refs, asking the master about all of them at once."""
        refs = list(refs)
        out: list[Any] = [None] * len(refs)
        todo = []
        for i, ref in enumerate(refs):
            if not isinstance(ref, Ref):
                raise TypeError(f"deref expects a Ref, got {type(ref).__name__}")
            data = self.store.get(ref.id) if self.store is not None else None
            if data is not None:
                out[i] = pickle.loads(data)
            else:
                todo.append(i)
        while todo:
            replies = [(i, self.link.request("where", refs[i].id)) for i in todo]
            todo = []
            blocked = not all(r.event.is_set() for _, r in replies)
            if blocked:
                self._blocking(True)
            try:
                answers = [(i, self.link.wait(r, timeout)) for i, r in replies]
            finally:
                if blocked:
                    self._blocking(False)
            for i, (term, holders, inline, error) in answers:
                if error is not None and error.startswith(CLUSTER_LOST):
                    raise ClusterLost(error)
                if error is not None:
                    raise TaskError(f"task {refs[i].id[:12]} failed:\n{error}")
                data = inline
                if data is None and self.store is not None:
                    data = self.store.get(term)
                if data is None:
                    data, failed = self.peers.fetch_any(holders, term)
                    if data is None:  # every holder is gone: the master re-runs its producer
                        self.link.send(("lost", None, term, failed))
                        todo.append(i)
                        continue
                out[i] = pickle.loads(data)
        return out


    def peek(self, ref: Ref, timeout: float | None = 60.0) -> tuple[bool, Any]:
        """(True, value) if `ref` has a value now, else (False, None); never waits
        for the task (a failed task raises TaskError, as deref does)."""
        data = self.store.get(ref.id) if self.store is not None else None
        if data is not None:
            return True, pickle.loads(data)
        term, holders, inline, error = self.link.wait(self.link.request("peek", ref.id), timeout)
        if error is not None and error.startswith(CLUSTER_LOST):
            raise ClusterLost(error)
        if error is not None:
            raise TaskError(f"task {ref.id[:12]} failed:\n{error}")
        if holders is None and inline is None:
            return False, None
        data = inline
        if data is None and self.store is not None:
            data = self.store.get(term)
        if data is None:
            data, _ = self.peers.fetch_any(holders, term)
        return (False, None) if data is None else (True, pickle.loads(data))


def current_runtime() -> Runtime:
    rt = getattr(_local, "runtime", None) or _default
    if rt is None:
        raise RuntimeError("spawn/deref need a running task or a Client (use `with Client(...)`)")
    return rt


def spawn(fn: Callable[..., Any] | str, *args: Any) -> Ref:
    """Start `fn(*args)` as a task; Ref arguments are resolved to their values first."""
    return current_runtime().spawn(fn, *args)


def deref(ref: Ref) -> Any:
    """The value of `ref`, waiting for it without holding a worker slot."""
    return current_runtime().deref(ref)


def deref_all(refs: Iterable[Ref]) -> list[Any]:
    return current_runtime().deref_many(refs)


class Client(Runtime):
    """A driver's connection to a cluster: spawn root tasks, deref results.

    `with Client(address, token):` also makes it the default runtime, so the
    module-level `spawn`/`deref` work in the driver.
    """

    def __init__(self, address: str, token: str | bytes | None = None, ns: str | None = None,
                 reconnect_timeout: float = 30.0, tls: Any = None) -> None:
        """`tls`: a TLSConfig, False for plain TCP, or None: $MUSKETEER_CIEL_TLS's
        keys when it is set."""
        from musketeer.backends.ciel.engine.tls import TLSConfig

        self.token = token if isinstance(token, bytes) else token_bytes(token)
        self.ns = ns or uuid.uuid4().hex
        self.tls = TLSConfig.from_env() if tls is None else (tls or None)
        self.peers = PeerPool(self.token, self.tls)
        self._spawned: dict[str, tuple[Any, ...]] = {}
        self._modules: dict[str, str] = {}
        self.link = MasterLink(address, self.token, self._hello, lambda msg: None, reconnect_timeout,
                               tls=self.tls)
        self._previous: Runtime | None = None

    def _hello(self) -> list[tuple[Any, ...]]:
        """On (re)connect: say who we are, re-register modules, re-send root spawns
        (idempotent: ids are deterministic)."""
        msgs: list[tuple[Any, ...]] = [("hello", "client", {})]
        msgs += [("module", name, src) for name, src in getattr(self, "_modules", {}).items()]
        msgs += list(getattr(self, "_spawned", {}).values())
        return msgs

    def _send_spawn(self, msg: tuple[Any, ...]) -> None:
        self._spawned[msg[1]] = msg
        self.link.send(msg)

    def forget(self, timeout: float = 10.0) -> None:
        """The job is over: the master drops every task of this client's namespace
        and tells the workers holding their objects to delete them (without this
        a worker's store grew with every job run on a shared cluster)."""
        self._spawned.clear()
        try:  # waits for the answer: a send just before close() could be lost
            self.link.wait(self.link.request("forget", self.ns), timeout)
        except (MasterLost, TimeoutError):
            pass  # best effort: a lost master has nothing to forget, and the job's own error matters more

    def register_module(self, source: str, prefix: str = "musketeer_ciel") -> str:
        """Ship a module's source to every worker (over the authenticated link);
        returns its content-derived name, under which tasks can name its functions."""
        name = f"{prefix}_{hashlib.sha256(source.encode()).hexdigest()[:16]}"
        self._modules[name] = source
        self.link.send(("module", name, source))
        return name

    def info(self, timeout: float = 10.0) -> dict[str, Any]:
        """The master's view: workers, task counts, executions per task."""
        return self.link.wait(self.link.request("info"), timeout)[0]

    def wait_for_workers(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.info()["workers"]) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {n} ciel workers joined in {timeout:.0f}s")
            time.sleep(0.05)

    @contextlib.contextmanager
    def as_default(self) -> Iterator["Client"]:
        """Make module-level spawn/deref use this client (without closing it after)."""
        global _default
        previous, _default = _default, self
        try:
            yield self
        finally:
            _default = previous

    def __enter__(self) -> "Client":
        global _default
        self._previous, _default = _default, self
        return self

    def __exit__(self, *exc: object) -> None:
        global _default
        _default = self._previous
        self.close()

    def close(self) -> None:
        self.link.close()
        self.peers.close()
