"""One party's process: run my local stages in the clear, then the secure
stages jointly with the other parties over TCP (MPyC), then (recipients
only) the pushed-up post-processing. Cleartext stages run through the
backend contract (`musketeer.backends.base.Backend`) on the engine the
caller passes in.

Failure policy: a peer that never connects, or disconnects before the
protocol ends, makes this process print one line and exit with code 3
within `timeout` seconds (no output is written: results are only written
after the MPC shutdown barrier). MPyC itself would wait forever. A peer
that closes its connection before the barrier completed gets
`BARRIER_GRACE` seconds, then the same.

With TLS (`tls=` the files `mpc.tls.check_party_keys` accepted), a peer
that rejects our certificate, or whose certificate we reject, is a
configuration error: one line, exit 2, instead of MPyC's silent retries.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from musketeer.backends.base import Backend, RunOptions
from musketeer.mpc.config import PartiesConfig
from musketeer.mpc.plan import LocalStage, SplitPlan

EXIT_PEER = 3
EXIT_CONFIG = 2
#: seconds the final barrier may take after a peer closed its connection
BARRIER_GRACE = 10.0


@dataclass
class PartyResult:
    frame: pd.DataFrame | None
    timings: dict[str, float] = field(default_factory=dict)
    received: list[tuple[str, Any]] = field(default_factory=list)


def _die(message: str, code: int = EXIT_PEER) -> None:
    print(f"musketeer: mpc: {message}", file=sys.stderr, flush=True)
    os._exit(code)


def run_local(stage: LocalStage, backend: Backend, tables: dict[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """A cleartext stage on the party's cleartext engine, through the
    backend contract (`generate`, then `run`); the caller (the CLI glue)
    chose the backend."""
    program = backend.generate(stage.workflow)
    return backend.run(program, RunOptions(tables=dict(tables or {}))).outputs


def _setup_mpyc(config: PartiesConfig, me: str, ssl: bool) -> Any:
    """MPyC reads its party list from sys.argv when first imported."""
    argv = [sys.argv[0], "--no-log", "-I", str(config.index(me))]
    for p in config.parties:
        argv += ["-P", f"{p.host}:{p.port}"]
    if ssl:
        argv.append("--ssl")
    saved, sys.argv = sys.argv, argv
    try:
        from mpyc import asyncoro
        from mpyc.runtime import mpc
    finally:
        sys.argv = saved
    return mpc, asyncoro


def _fail_fast_on_tls(mpc: Any, config: PartiesConfig) -> None:
    """MPyC retries a failed connect every 0.1 s forever, swallowing the
    error; a TLS verification failure will not heal, so stop at once."""
    import ssl as ssl_mod

    loop = mpc._loop
    connect = loop.create_connection

    async def create_connection(*args: Any, **kw: Any) -> Any:
        try:
            return await connect(*args, **kw)
        except ssl_mod.SSLError as e:
            host = kw.get("server_hostname") or ""
            peer = host.removeprefix("MPyC party ")
            name = config.names[int(peer)] if peer.isdigit() and int(peer) < len(config.names) else "a peer"
            _die(f"TLS handshake with party {name!r} failed ({e.reason or e}); "
                 f"do both parties hold keys from the same `musketeer mpc keys` run?", EXIT_CONFIG)
            raise

    loop.create_connection = create_connection


def run_party(plan: SplitPlan, config: PartiesConfig, me: str, *, backend: Backend, timeout: float = 30.0,
              tls: tuple[str, str, str] | None = None, progress: bool = False) -> PartyResult:
    """`backend` runs this party's cleartext stages (its own inputs, and the
    recipients' push-up). `progress` prints one stderr line per phase (local done, connected,
    secure done), so a user, the demo or a test can tell where a run is."""

    def say(text: str) -> None:
        if progress:
            print(f"musketeer: mpc: party {me}: {text}", file=sys.stderr, flush=True)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    frames: dict[str, pd.DataFrame] = {}
    for stage in plan.local:
        if stage.party == me:
            frames.update(run_local(stage, backend))
    timings["local_seconds"] = time.perf_counter() - t0
    say(f"local stages done in {timings['local_seconds']:.2f} s; connecting to "
        f"{len(config.parties) - 1} parties{' over TLS' if tls is not None else ''}")

    from musketeer.mpc.secure.engine import check_settings

    check_settings()
    mpc, asyncoro = _setup_mpyc(config, me, tls is not None)
    if tls is not None:
        _fail_fast_on_tls(mpc, config)
    state = {"phase": "connecting"}
    grace_timers: list[threading.Timer] = []

    def lost(protocol: Any, exc: Any) -> None:
        """An identified peer's connection ended."""
        peer = config.names[protocol.peer_pid]
        if state["phase"] in ("connecting", "computing"):
            _die(f"party {peer!r} disconnected mid-protocol ({exc or 'connection closed'}); aborting, no output")
        if exc is not None:  # a clean shutdown closes without an error; MPyC would raise into asyncio's log
            _die(f"party {peer!r} failed during the final barrier ({exc}); aborting, no output")
        if state["phase"] == "shutdown":
            # A peer closes only once every barrier message is on its way, so
            # ours completes within moments; a peer that crashed also closes
            # cleanly (the OS closes its sockets), and then ours never does.
            grace = threading.Timer(BARRIER_GRACE, lambda: _die(
                f"party {peer!r} left before the final barrier completed; aborting, no output"))
            grace.daemon = True
            grace.start()
            grace_timers.append(grace)
        base.connection_lost(protocol, exc)

    def log(text: str) -> None:
        print(f"musketeer: mpc: party {me}: {text}", file=sys.stderr, flush=True)

    from musketeer.mpc.listener import fingerprint, guarded_exchanger, log_tls_handshake_failures

    base = asyncoro.MessageExchanger
    while getattr(base, "_musketeer_base", None) is not None:  # a second run in one process (tests)
        base = base._musketeer_base
    guarded = guarded_exchanger(base, session=fingerprint(plan.to_text()), say=log, lost=lost)
    guarded._musketeer_base = base
    asyncoro.MessageExchanger = guarded
    if tls is not None:
        log_tls_handshake_failures(log)
    deadline = threading.Timer(timeout, lambda: _die(
        f"could not reach every party within {timeout:g} s (phase: {state['phase']}); aborting, no output"))
    deadline.daemon = True
    deadline.start()

    from musketeer.mpc.secure.engine import Engine
    from musketeer.mpc.secure.relation import Channel

    chan = Channel(mpc, config.names, me)
    result: dict[str, Any] = {}

    async def start() -> None:
        if tls is None:
            await mpc.start()
            return
        from musketeer.mpc.tls import MPyCConfigDir

        with MPyCConfigDir(tls, config.index(me)):
            await mpc.start()

    async def main() -> None:
        try:
            await start()
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            from musketeer.mpc.config import ConfigError

            port = config.party(me).port
            raise ConfigError(f"party {me!r}: port {port} is already in use on this machine "
                              f"(another process, or this party started twice?)") from None
        deadline.cancel()
        state["phase"] = "computing"
        say("all parties connected; secure stages running")
        t1 = time.perf_counter()
        engine = Engine(mpc, chan, plan)
        await engine.load_inputs(frames)
        await engine.run()
        result["frame"] = await engine.reveal(plan.reveal, list(plan.recipients))
        timings["secure_seconds"] = time.perf_counter() - t1
        say(f"secure stages done in {timings['secure_seconds']:.2f} s")
        if os.environ.get("MUSKETEER_MPC_FAULT") == "before-barrier":  # fault injection for tests
            os._exit(70)
        state["phase"] = "shutdown"
        stop = threading.Timer(timeout, lambda: _die("a party did not finish the protocol; aborting, no output"))
        stop.daemon = True
        stop.start()
        await mpc.shutdown()
        stop.cancel()
        state["phase"] = "done"
        for t in grace_timers:
            t.cancel()

    mpc.run(main())
    frame = result.get("frame")
    if frame is not None and plan.pushup is not None:
        t2 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "revealed.parquet")
            frame.to_parquet(path, index=False)
            frame = run_local(plan.pushup, backend, {"__revealed": path})["result"]
        timings["local_seconds"] += time.perf_counter() - t2
    record = os.environ.get("MUSKETEER_MPC_RECORD")
    if record:
        with open(record, "w", encoding="utf-8") as f:
            json.dump([[label, _plain(v)] for label, v in chan.received], f)
    return PartyResult(frame, timings, chan.received)


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray) and v.ndim > 1:
        v = v.ravel()
    try:
        return [x.item() if hasattr(x, "item") else x for x in list(v)]
    except TypeError:
        return v.item() if hasattr(v, "item") else v
