"""The master: dynamic task graph, object table, placement, failure handling.

State lives in one process under one lock; handlers only update tables and
queue outgoing messages (sending never blocks). The pieces:

* tasks: id -> Task (function name, pickled args, dependency ids, state);
  a task that returned a Ref has `alias` set (its output *is* that ref's).
* objects: ref id -> holders (worker addresses) and size; small objects
  (< INLINE bytes) are also kept inline, so derefs of them skip a fetch.
* waiters / dependents: who is waiting for a ref (deref requests, tasks
  whose inputs are missing), keyed by the ref at the end of its alias chain.
* lineage: a needed ref with no holder makes its producer runnable again,
  which recursively wants that producer's own lost inputs (`_want`). Nothing
  else re-runs: tasks whose outputs survive are not touched.

Placement: among workers with a free slot, the one holding the most input
bytes; ties go to the least loaded. Failure: a worker whose connection drops
or whose heartbeats stop is removed; its running tasks are requeued and the
objects only it held are lost (recomputed when needed). When the last worker
is gone and none joins within `worker_grace` seconds, waiting forever would
hide the failure (an OOM kill of every worker looked like a hang), so the
master aborts: every waiter gets a `CLUSTER_LOST` error, unfinished tasks
become "aborted" and come back to life only when someone wants them again.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musketeer.backends.ciel.engine import journal as jrn
from musketeer.backends.ciel.engine.protocol import (
    CLUSTER_LOST,
    Connection,
    accept_loop,
    listen,
    token_bytes,
)
from musketeer.backends.ciel.engine.tls import TLS_ENV, TLSConfig

INLINE = 16 * 1024  # objects up to this size travel with the master's messages
#: Seconds without a message before a worker whose connection is still open is
#: dropped. A dead process is noticed at once (its sockets close); this is for
#: hung machines and cut networks. It was 3 s, and at load average ~25 a worker
#: busy pickling a large object (or a stalled master) went silent that long:
#: TPC-H Q17 at SF 1 failed with "all 12 workers died" while both were alive.
HEARTBEAT_TIMEOUT = 30.0
#: a monitor round this late means the master itself was stalled
STALL = 1.0


@dataclass
class Task:
    id: str
    ns: str
    fn: str
    blob: bytes
    deps: list[str]
    state: str = "pending"  # pending | ready | running | done | failed | aborted
    worker: str | None = None
    alias: str | None = None
    error: str | None = None
    runs: int = 0


@dataclass
class Obj:
    size: int
    holders: set[str] = field(default_factory=set)
    inline: bytes | None = None


@dataclass
class WorkerInfo:
    address: str
    conn: Connection
    slots: int
    running: set[str] = field(default_factory=set)
    blocked: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    held: set[str] = field(default_factory=set)

    def capacity(self) -> int:
        # 2x slots: keep a task queued on the worker so it never idles between tasks.
        return 2 * self.slots + self.blocked - len(self.running)


class Master:
    def __init__(self, token: bytes, journal_path: str | Path | None = None,
                 heartbeat_timeout: float = HEARTBEAT_TIMEOUT, grace: float = 1.0, worker_grace: float = 2.0) -> None:
        self.token = token
        self.lock = threading.RLock()
        self.tasks: dict[str, Task] = {}
        self.objects: dict[str, Obj] = {}
        self.waiters: dict[str, list[tuple[Connection, int, str]]] = collections.defaultdict(list)
        self.dependents: dict[str, set[str]] = collections.defaultdict(set)
        self.ready: collections.deque[str] = collections.deque()
        self.workers: dict[str, WorkerInfo] = {}
        self.modules: dict[str, str] = {}
        self.heartbeat_timeout = heartbeat_timeout
        self.worker_grace = worker_grace
        # workers lost since the cluster last went from no worker to some: (address, why)
        self.dead: list[tuple[str, str]] = []
        self.empty_since: float | None = None  # when the last worker was lost
        self.recovering_until = 0.0
        self.blocks = 0
        self._last_tick: float | None = None
        self.journal: jrn.Journal | None = None
        if journal_path is not None:
            if Path(journal_path).exists():
                self._replay(journal_path)
                self.recovering_until = time.monotonic() + grace
            self.journal = jrn.Journal(journal_path)

    # --- journal --------------------------------------------------------------------
    def _replay(self, path: str | Path) -> None:
        """Rebuild tasks and published refs; holders come back as workers rejoin."""
        for rec in jrn.replay(path):
            kind = rec[0]
            if kind == "spawn":
                _, tid, ns, fn, blob, deps = rec
                self.tasks.setdefault(tid, Task(tid, ns, fn, blob, deps))
            elif kind == "done":
                _, tid, size, inline, delegate = rec
                t = self.tasks[tid]
                t.state = "done"
                t.alias = delegate
                if inline is not None:
                    self.objects[tid] = Obj(size, set(), inline)
            elif kind == "failed":
                t = self.tasks[rec[1]]
                t.state, t.error = "failed", rec[2]
            elif kind == "module":
                self.modules[rec[1]] = rec[2]
            elif kind == "forget":  # a journal that was not compacted after the forget
                for tid in [tid for tid, t in self.tasks.items() if t.ns == rec[1]]:
                    del self.tasks[tid]
                    self.objects.pop(tid, None)

    def _state_records(self) -> list[tuple[Any, ...]]:
        """The journal records that rebuild what the master knows now."""
        out: list[tuple[Any, ...]] = [("module", name, src) for name, src in self.modules.items()]
        out += [("spawn", t.id, t.ns, t.fn, t.blob, t.deps) for t in self.tasks.values()]
        for t in self.tasks.values():
            if t.state == "done":
                obj = self.objects.get(t.id)
                out.append(("done", t.id, obj.size if obj else 0, obj.inline if obj else None, t.alias))
            elif t.state == "failed":
                out.append(("failed", t.id, t.error))
        return out

    def _log(self, record: tuple[Any, ...]) -> None:
        if self.journal is not None:
            self.journal.append(record)

    # --- connections ---------------------------------------------------------------
    def on_peer(self, sock: Any) -> None:
        Connection(sock, self.on_batch, self.on_close, name="peer")

    def on_batch(self, conn: Connection, batch: list[tuple[Any, ...]]) -> None:
        with self.lock:
            w = conn.info if isinstance(conn.info, WorkerInfo) else None
            if w is not None:
                w.last_seen = time.monotonic()
            acks = []
            for msg in batch:
                handler = getattr(self, "on_" + msg[0], None)
                if handler is None or (conn.info is None and msg[0] != "hello"):
                    conn.close()  # a protocol violation from an authenticated peer: drop it
                    return
                handler(conn, *msg[1:])
                if msg[0] in ("done", "failed") or (msg[0] == "lost" and msg[1] is not None):
                    acks.append(msg[1])
            self._dispatch()
            if self.journal is not None:
                self.journal.flush()
            # only now (journaled) may the worker forget the task's spawns and end
            for tid in acks:
                conn.send(("ack", tid))

    def on_close(self, conn: Connection) -> None:
        with self.lock:
            if isinstance(conn.info, WorkerInfo) and self.workers.get(conn.info.address) is conn.info:
                self._worker_lost(conn.info, "connection lost")
                self._dispatch()

    # --- messages ------------------------------------------------------------------
    def on_hello(self, conn: Connection, role: str, info: dict[str, Any]) -> None:
        if role == "worker":
            w = WorkerInfo(info["address"], conn, int(info["slots"]))
            old = self.workers.get(w.address)
            if old is not None:
                self._worker_lost(old, "replaced by a new connection")
            if not self.workers and self.empty_since is None:
                self.dead.clear()  # a new epoch: deaths before it were survived
            self.empty_since = None
            conn.info = w
            self.workers[w.address] = w
            w.blocked = int(info.get("blocked", 0))
            for name, src in self.modules.items():
                conn.send(("module", name, src))
            for tid in info.get("running", ()):
                # still running there (we restarted, or dropped and re-admitted the
                # worker): do not hand it to anyone else meanwhile
                t = self.tasks.get(tid)
                if t is not None and t.state in ("pending", "ready"):
                    t.state, t.worker = "running", w.address
                    w.running.add(tid)
            self.on_held(conn, info.get("held", {}))
        else:
            conn.info = "client"

    def on_held(self, conn: Connection, held: dict[str, int]) -> None:
        """What a (re)joining worker holds; it sends this after re-sending the
        spawns of its unacknowledged tasks, so their children are known first."""
        for ref, size in held.items():
            self._add_holder(ref, size, conn.info)

    def _add_holder(self, ref: str, size: int, w: WorkerInfo) -> None:
        t = self.tasks.get(ref)
        if t is None:
            return  # from a job this master no longer knows
        obj = self.objects.get(ref)
        if obj is None:
            obj = self.objects[ref] = Obj(size)
        obj.holders.add(w.address)
        w.held.add(ref)
        if t.state != "done":  # finished while the master was away
            t.state, t.alias = "done", None
            self._log(("done", ref, size, None, None))
        self._published(ref)

    def on_spawn(self, conn: Connection, tid: str, ns: str, fn: str, blob: bytes, deps: list[str]) -> None:
        if tid in self.tasks:
            if self.tasks[tid].state == "aborted":
                self._want(tid)  # spawned again after an abort: run it this time
            return  # same id, same task: already known (idempotent re-execution)
        for d in deps:
            if d not in self.tasks:
                conn.send(("error", f"task {tid} depends on unknown ref {d}"))
                return
        self.tasks[tid] = t = Task(tid, ns, fn, blob, list(deps))
        self._log(("spawn", tid, ns, fn, blob, deps))
        self._check(t)

    def on_module(self, conn: Connection, name: str, source: str) -> None:
        if self.modules.get(name) == source:
            return
        self.modules[name] = source
        self._log(("module", name, source))
        for w in self.workers.values():
            w.conn.send(("module", name, source))

    def on_done(self, conn: Connection, tid: str, size: int, inline: bytes | None, delegate: str | None) -> None:
        w: WorkerInfo = conn.info
        w.running.discard(tid)
        t = self.tasks.get(tid)
        if t is None:
            if delegate is None:
                conn.send(("drop", [tid]))  # finished after its job was forgotten
            return
        if delegate is not None:
            if t.state == "done":
                return
            t.state, t.alias, t.worker = "done", delegate, None
            self._log(("done", tid, 0, None, delegate))
            target = self._resolve(tid)
            # whoever waits for this task now waits for the end of the alias chain
            if target != tid:
                self.waiters[target].extend(self.waiters.pop(tid, []))
                self.dependents[target].update(self.dependents.pop(tid, set()))
            if self._available(target):
                self._published(target)
            else:
                self._want(target)
            return
        obj = self.objects.get(tid)
        if obj is None:
            obj = self.objects[tid] = Obj(size, set(), inline)
        obj.holders.add(w.address)
        w.held.add(tid)
        if t.state != "done":
            t.state, t.worker, t.alias = "done", None, None
            self._log(("done", tid, size, inline, None))
        self._published(tid)

    def on_failed(self, conn: Connection, tid: str, error: str) -> None:
        if isinstance(conn.info, WorkerInfo):
            conn.info.running.discard(tid)
        t = self.tasks.get(tid)
        if t is None or t.state in ("done", "failed"):
            return
        t.state, t.error, t.worker = "failed", error, None
        self._log(("failed", tid, error))
        self._published(tid)

    def on_lost(self, conn: Connection, tid: str | None, ref: str, failed: list[str]) -> None:
        """A fetch failed: those holders do not have `ref` (any more)."""
        obj = self.objects.get(ref)
        if obj is not None:
            for address in failed:
                obj.holders.discard(address)
                if address in self.workers:
                    self.workers[address].held.discard(ref)
            if not obj.holders and obj.inline is None:
                del self.objects[ref]
        if tid is not None:
            if isinstance(conn.info, WorkerInfo):
                conn.info.running.discard(tid)
            t = self.tasks.get(tid)
            if t is not None and t.state == "running":
                t.state, t.worker = "pending", None
                self._check(t)
        else:
            self._want(ref)

    def on_forget(self, conn: Connection, req: int, ns: str) -> None:
        """A client's job is over: drop its tasks and objects, here and on the holders."""
        gone = {tid for tid, t in self.tasks.items() if t.ns == ns}
        drops: dict[str, list[str]] = collections.defaultdict(list)
        for tid in gone:
            del self.tasks[tid]
            self.waiters.pop(tid, None)
            self.dependents.pop(tid, None)
            obj = self.objects.pop(tid, None)
            for address in obj.holders if obj is not None else ():
                w = self.workers.get(address)
                if w is not None:
                    w.held.discard(tid)
                    drops[address].append(tid)
        for address, refs in drops.items():
            self.workers[address].conn.send(("drop", refs))
        if self.journal is not None and gone:
            self._log(("forget", ns))
            self.journal.rewrite(self._state_records())
        conn.send(("reply", req, len(gone)))

    def on_block(self, conn: Connection, tid: str) -> None:
        conn.info.blocked += 1
        self.blocks += 1

    def on_unblock(self, conn: Connection, tid: str) -> None:
        conn.info.blocked -= 1

    def on_hb(self, conn: Connection) -> None:
        pass

    def on_where(self, conn: Connection, req: int, ref: str) -> None:
        if ref not in self.tasks:
            if self.recovering_until:  # a rejoining worker may still re-send its spawn
                self.waiters[ref].append((conn, req, ref))
                return
            conn.send(("at", req, ref, [], None, f"unknown ref {ref}"))
            return
        target = self._resolve(ref)
        if self._available(target):
            conn.send(self._at(req, target))
        else:
            self.waiters[target].append((conn, req, ref))
            self._want(target)

    def on_peek(self, conn: Connection, req: int, ref: str) -> None:
        """`where` without waiting: holders None means "not finished yet"."""
        if ref not in self.tasks:
            conn.send(("at", req, ref, [], None, f"unknown ref {ref}"))
            return
        target = self._resolve(ref)
        if self._available(target):
            conn.send(self._at(req, target))
        else:
            conn.send(("at", req, target, None, None, None))

    def on_info(self, conn: Connection, req: int) -> None:
        states = collections.Counter(t.state for t in self.tasks.values())
        conn.send(("reply", req, {
            "workers": {a: {"slots": w.slots, "running": len(w.running), "held": len(w.held)}
                        for a, w in self.workers.items()},
            "tasks": dict(states),
            "blocks": self.blocks,  # derefs that made a task wait inside a worker, ever
            "runs": {tid: t.runs for tid, t in self.tasks.items() if t.runs},
            "fn": {tid: t.fn for tid, t in self.tasks.items()},
        }))

    # --- the graph -----------------------------------------------------------------
    def _resolve(self, ref: str) -> str:
        seen = ref
        t = self.tasks[ref]
        while t.alias is not None:
            ref = t.alias
            t = self.tasks[ref]
        if seen != ref:  # path compression keeps long loop chains cheap
            self.tasks[seen].alias = ref
        return ref

    def _available(self, ref: str) -> bool:
        """Terminal `ref` has a value (or an error) someone can read."""
        t = self.tasks[ref]
        if t.state == "failed":
            return True
        obj = self.objects.get(ref)
        return t.state == "done" and obj is not None and (obj.inline is not None or bool(obj.holders))

    def _at(self, req: int, target: str) -> tuple[Any, ...]:
        t = self.tasks[target]
        if t.state == "failed":
            return ("at", req, target, [], None, t.error)
        obj = self.objects[target]
        return ("at", req, target, sorted(obj.holders), obj.inline, None)

    def _published(self, target: str) -> None:
        for conn, req, _ in self.waiters.pop(target, []):
            conn.send(self._at(req, target))
        for tid in self.dependents.pop(target, set()):
            t = self.tasks.get(tid)  # None: forgotten
            if t is not None and t.state == "pending":
                self._check(t)

    def _check(self, t: Task) -> None:
        """Queue a pending task whose inputs are all available; otherwise wait for them."""
        if self.recovering_until:
            return  # after the grace period every pending task is checked
        missing = [d for d in t.deps if not self._available(self._resolve(d))]
        if not missing:
            t.state = "ready"
            self.ready.append(t.id)
            return
        for d in missing:
            target = self._resolve(d)
            self.dependents[target].add(t.id)
            self._want(target)

    def _want(self, ref: str) -> None:
        """Someone needs `ref` (terminal): if its producer finished but the object
        is gone, run the producer again (lineage)."""
        if self.recovering_until:
            return
        t = self.tasks[ref]
        if t.state == "aborted":
            t.state = "pending"
            self._check(t)
        elif t.state == "done" and t.alias is None and not self._available(ref):
            t.state = "pending"
            self._check(t)
        elif t.state == "done" and t.alias is not None:
            self._want(self._resolve(ref))

    def _dispatch(self) -> None:
        if self.recovering_until:
            return
        while self.ready:
            free = [w for w in self.workers.values() if w.capacity() > 0]
            if not free:
                return
            tid = self.ready.popleft()
            t = self.tasks.get(tid)  # None: forgotten
            if t is None or t.state != "ready":
                continue
            targets = [self._resolve(d) for d in t.deps]
            if not all(self._available(x) for x in targets):
                t.state = "pending"  # an input was lost since the task became ready
                self._check(t)
                continue
            w = max(free, key=lambda w: (sum(self.objects[x].size for x in targets
                                             if x in w.held and x in self.objects), w.capacity()))
            deps = {}
            for d, x in zip(t.deps, targets):
                xt = self.tasks[x]
                if xt.state == "failed":
                    deps[d] = (x, [], None, xt.error)
                else:
                    obj = self.objects[x]
                    deps[d] = (x, [] if obj.inline is not None else sorted(obj.holders), obj.inline, None)
            t.state, t.worker = "running", w.address
            t.runs += 1
            w.running.add(tid)
            w.conn.send(("run", tid, t.ns, t.fn, t.blob, deps))

    def _worker_lost(self, w: WorkerInfo, why: str) -> None:
        self.workers.pop(w.address, None)
        w.conn.close()
        # one entry per worker (the latest reason): one that was dropped and came
        # back several times is still one worker ("all 12 workers died" of 2)
        self.dead = [(a, r) for a, r in self.dead if a != w.address] + [(w.address, why)]
        if not self.workers:
            self.empty_since = time.monotonic()
        for tid in w.running:
            t = self.tasks.get(tid)
            if t is not None and t.state == "running" and t.worker == w.address:
                t.state, t.worker = "pending", None
                self._check(t)
        for ref in w.held:
            obj = self.objects.get(ref)
            if obj is None:
                continue
            obj.holders.discard(w.address)
            if not obj.holders and obj.inline is None:
                del self.objects[ref]
                if self.waiters.get(ref) or self.dependents.get(ref):
                    self._want(ref)
        w.running.clear()
        w.held.clear()

    # --- background ----------------------------------------------------------------
    def monitor(self) -> None:
        """Heartbeat timeouts, and the end of the post-restart grace period."""
        while True:
            time.sleep(0.1)
            with self.lock:
                self.tick(time.monotonic())

    def tick(self, now: float) -> None:
        """One round of the monitor (under the lock)."""
        if self._last_tick is not None and now - self._last_tick > STALL:
            # We ourselves were held up (a long journal rewrite, an overloaded
            # machine): heartbeats sat unread in the sockets meanwhile. Silence
            # we could not have observed is no evidence against the workers;
            # counting it once dropped every worker of a busy cluster at once.
            for w in self.workers.values():
                w.last_seen = max(w.last_seen, now)
        self._last_tick = now
        if self.recovering_until and now >= self.recovering_until:
            self.recovering_until = 0.0
            for t in list(self.tasks.values()):
                w = self.workers.get(t.worker) if t.worker is not None else None
                if t.state == "running" and w is not None and t.id in w.running:
                    continue  # a rejoined worker said it is running it
                if t.state in ("pending", "ready", "running"):
                    t.state, t.worker = "pending", None
                    self._check(t)
            for ref in [r for r in self.waiters if r not in self.tasks]:
                for c, req, _ in self.waiters.pop(ref):
                    c.send(("at", req, ref, [], None, f"unknown ref {ref}"))
            for ref in list(self.waiters) + list(self.dependents):
                if ref not in self.tasks:
                    continue
                if self.waiters.get(ref) or self.dependents.get(ref):
                    if self._available(ref):
                        self._published(ref)
                    else:
                        self._want(ref)
        for w in list(self.workers.values()):
            if now - w.last_seen > self.heartbeat_timeout:
                self._worker_lost(w, f"no heartbeat for {self.heartbeat_timeout:g}s")
        if (not self.workers and self.dead and self.empty_since is not None
                and now - self.empty_since >= self.worker_grace and not self.recovering_until):
            self._abort()
        self._dispatch()

    def _abort(self) -> None:
        """No worker left: fail everyone waiting instead of hanging. Unfinished
        tasks become "aborted" (a rejoining worker does not run stale work);
        `_want` revives them if a later job needs them."""
        unfinished = [t for t in self.tasks.values() if t.state in ("pending", "ready", "running")]
        if not unfinished and not self.waiters:
            return
        why = "; ".join(f"worker {a}: {r}" for a, r in self.dead)
        error = f"{CLUSTER_LOST} all {len(self.dead)} workers died ({why}); job aborted"
        for t in unfinished:
            t.state, t.worker = "aborted", None
        self.ready.clear()
        self.dependents.clear()
        waiters, self.waiters = self.waiters, collections.defaultdict(list)
        for target, ws in waiters.items():
            for conn, req, _ in ws:
                conn.send(("at", req, target, [], None, error))


def serve(host: str, port: int, token: bytes, journal: str | None = None,
          heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
          grace: float = 1.0, parent_pid: int | None = None, announce: bool = True,
          worker_grace: float = 2.0, tls: TLSConfig | None = None) -> int:
    """Run a master until killed (or until `parent_pid` exits). Returns only if
    the listening socket fails for good: 1, after saying so on stderr."""
    master = Master(token, journal, heartbeat_timeout, grace, worker_grace)
    srv = listen(host, port)
    if announce:
        print(f"CIEL-MASTER {srv.getsockname()[1]}", flush=True)
    threading.Thread(target=master.monitor, daemon=True).start()
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    accept_loop(srv, token, master.on_peer, tls, "ciel master")
    print("ciel master: the listening socket failed; stopping", file=sys.stderr, flush=True)
    return 1


def _watch_parent(pid: int) -> None:
    """Processes started by a Cluster exit when the process that started them is gone."""
    while True:
        time.sleep(0.5)
        try:
            os.kill(pid, 0)
        except OSError:
            os._exit(0)
        if os.getppid() == 1 and pid != 1:
            os._exit(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ciel-master")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token")
    p.add_argument("--journal")
    p.add_argument("--heartbeat-timeout", type=float, default=HEARTBEAT_TIMEOUT)
    p.add_argument("--grace", type=float, default=1.0)
    p.add_argument("--worker-grace", type=float, default=2.0,
                   help="seconds without any worker before waiting jobs are aborted")
    p.add_argument("--parent-pid", type=int)
    p.add_argument("--tls", metavar="DIR", help=f"cluster TLS keys (default ${TLS_ENV}; plain TCP if unset)")
    a = p.parse_args(argv)
    tls = TLSConfig(a.tls) if a.tls else TLSConfig.from_env()
    return serve(a.host, a.port, token_bytes(a.token), a.journal, a.heartbeat_timeout, a.grace, a.parent_pid,
                 worker_grace=a.worker_grace, tls=tls)


if __name__ == "__main__":
    sys.exit(main())
