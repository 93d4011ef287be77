"""`musketeer ciel master|worker`: start ciel engine processes by hand.

Kept out of cli.py (which only registers this group) so the engine's options
live next to each other. Both commands run until killed. The shared token
comes from --token or $MUSKETEER_CIEL_TOKEN; a master started without one
makes one up and prints it (stderr) for the workers and clients.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from typing import Any

TOKEN_ENV = "MUSKETEER_CIEL_TOKEN"
TLS_ENV = "MUSKETEER_CIEL_TLS"


def register(sub: Any) -> None:
    """Add the `ciel` command group to the top-level subparsers."""
    group = sub.add_parser("ciel", help="run processes of the ciel engine (master, worker)")
    cmds = group.add_subparsers(dest="ciel_command", metavar="ROLE", required=True)
    m = cmds.add_parser("master", help="start a ciel master")
    m.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    m.add_argument("--port", type=int, default=0, help="port (default: any free one, printed)")
    m.add_argument("--token", help=f"shared secret (default ${TOKEN_ENV}, else a new one is printed)")
    m.add_argument("--journal", metavar="FILE", help="append-only journal; restarting with it resumes jobs")
    m.add_argument("--tls", metavar="DIR", help=f"TLS keys from `musketeer ciel keys` (default ${TLS_ENV})")
    m.set_defaults(handler=cmd_master, table_bindings=[])
    w = cmds.add_parser("worker", help="start a ciel worker")
    w.add_argument("--master", required=True, metavar="HOST:PORT")
    w.add_argument("--host", default="127.0.0.1", help="address peers reach this worker on")
    w.add_argument("--port", type=int, default=0)
    w.add_argument("--slots", type=int, default=os.cpu_count() or 2, help="concurrent tasks")
    w.add_argument("--token", help=f"shared secret (default ${TOKEN_ENV})")
    w.add_argument("--spill-dir", metavar="DIR")
    w.add_argument("--tls", metavar="DIR", help=f"TLS keys from `musketeer ciel keys` (default ${TLS_ENV})")
    w.set_defaults(handler=cmd_worker, table_bindings=[])
    k = cmds.add_parser("keys", help="make the TLS key and certificate a cluster's processes share")
    k.add_argument("--out", required=True, metavar="DIR",
                   help=f"where to write them; give DIR to every process as --tls DIR or ${TLS_ENV}")
    k.add_argument("--force", action="store_true", help="replace keys already in DIR")
    k.set_defaults(handler=cmd_keys, table_bindings=[])


def cmd_master(args: argparse.Namespace) -> int:
    from musketeer.backends.ciel.engine import master

    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        token = secrets.token_hex(16)
        print(f"ciel token (give it to workers and clients as ${TOKEN_ENV}): {token}", file=sys.stderr)
    return master.serve(args.host, args.port, token.encode(), args.journal, tls=_tls(args.tls))


def _tls(directory: str | None) -> Any:
    """The TLS keys of --tls DIR or $MUSKETEER_CIEL_TLS (None: plain TCP); bad keys are a one-line error."""
    from musketeer.backends.ciel.engine.tls import TLSConfig, TLSError
    from musketeer.ir.types import MusketeerError

    try:
        return TLSConfig(directory) if directory else TLSConfig.from_env()
    except TLSError as exc:
        raise MusketeerError(str(exc)) from None


def cmd_keys(args: argparse.Namespace) -> int:
    from musketeer.backends.ciel.engine.tls import TLSError, make_keys
    from musketeer.ir.types import MusketeerError

    try:
        out = make_keys(args.out, force=args.force)
    except TLSError as exc:
        raise MusketeerError(str(exc)) from None
    print(f"ciel TLS keys in {out}: give the directory to every master, worker and client "
          f"(--tls {out} or ${TLS_ENV}={out}); keep it private")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from musketeer.backends.ciel.engine import worker

    argv = ["--master", args.master, "--host", args.host, "--port", str(args.port), "--slots", str(args.slots)]
    if args.token:
        argv += ["--token", args.token]
    if args.spill_dir:
        argv += ["--spill-dir", args.spill_dir]
    if args.tls:
        _tls(args.tls)
        argv += ["--tls", args.tls]
    worker.main(argv)
    return 0
