"""`musketeer mpc run|explain|keys|demo`: multi-party joint queries.

Kept apart from cli.py: `register(subparsers)` adds the group, and the
handlers import mpc/ (and MPyC) only when called. This is the glue between
the layers: it parses the query with the SQL frontend and hands mpc/ the
IR (`plan_query`), and gives each party's runtime the cleartext backend
its local stages run on (`local_backend`); mpc/ itself never parses SQL
nor calls back into the facade.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mpc = sub.add_parser("mpc", help="multi-party queries (Conclave split + MPyC secure stages)")
    mpc.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    mpc.set_defaults(table_bindings=[])  # cli.main reads these for every command
    msub = mpc.add_subparsers(dest="mpc_command", metavar="MPC_COMMAND", required=True)
    for name, help_text in (("run", "run this party's share of a joint query"),
                            ("explain", "print the split plan and the per-party leakage report")):
        p = msub.add_parser(name, help=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("query", help="SQL file over the parties' table names")
        p.add_argument("--parties", required=True, metavar="TOML", help="parties config")
        p.add_argument("--mpc-only", action="store_true", help="run everything under MPC (baseline)")
        if name == "run":
            p.add_argument("--party", required=True, metavar="NAME", help="which party this process is")
            p.add_argument("--output", metavar="PATH", help="recipients: write the result (.csv/.parquet)")
            p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for peers (default 30)")
            p.add_argument("--tls", "--ssl", dest="tls", action="store_true",
                           help="TLS between the parties (MPyC's --ssl) with keys from `musketeer mpc keys`; "
                                "the default when any party is on another machine")
            p.add_argument("--plain", action="store_true",
                           help="unencrypted, unauthenticated TCP even across machines (the default only when "
                                "every party is on this machine's loopback)")
            p.add_argument("--keys", metavar="DIR", help="this party's key files: DIR/NAME/ or DIR "
                                                         "(default: mpc_keys/ next to the parties config)")
            p.add_argument("--metrics", action="store_true", help="print local/secure seconds to stderr")
            p.add_argument("--progress", action="store_true", help="print one stderr line per phase")
        p.set_defaults(handler=_run if name == "run" else _explain)
    p = msub.add_parser("keys", help="make a CA and each party's TLS key and certificate for --tls")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--parties", required=True, metavar="TOML", help="parties config (party order = MPyC index)")
    p.add_argument("--out", metavar="DIR", help="where to write (default: mpc_keys/ next to the parties config)")
    p.add_argument("--force", action="store_true", help="replace keys already in DIR")
    p.set_defaults(handler=_keys)
    p = msub.add_parser("demo", help="three parties on 127.0.0.1 with generated data")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--rows", type=int, default=200, help="rows per party (default 200)")
    p.add_argument("--only", choices=["hhi", "credit", "patients"], action="append", help="run just these")
    p.add_argument("--mpc-only", action="store_true", help="also time the all-MPC baseline")
    p.add_argument("--tls", action="store_true", help="connect the parties over TLS (fresh keys per scenario)")
    p.set_defaults(handler=_demo)


def plan_query(sql: str, config, *, mpc_only: bool = False, filename: str = "<sql>"):
    """Parse a joint query over the parties' tables (typed by the config's
    catalog, no file read) and split it: the SplitPlan `explain` prints and
    every party runs."""
    from musketeer.frontends.sql import parse_workflow
    from musketeer.mpc.split import plan_workflow

    return plan_workflow(parse_workflow(sql, config.catalog(), filename), config, mpc_only=mpc_only)


def local_backend():
    """The cleartext engine a party's local stages and the recipients'
    push-up run on: the in-process pandas/pyarrow backend."""
    from musketeer.backends.local import BACKEND

    return BACKEND


def _load(args: argparse.Namespace):
    from musketeer.mpc.config import load_config

    config = load_config(args.parties)
    try:
        with open(args.query, encoding="utf-8") as f:
            sql = f.read()
    except FileNotFoundError:
        from musketeer.mpc.config import ConfigError

        raise ConfigError(f"query file {args.query} does not exist") from None
    return config, plan_query(sql, config, mpc_only=args.mpc_only, filename=args.query)


def _explain(args: argparse.Namespace) -> int:
    _, plan = _load(args)
    sys.stdout.write(plan.to_text())
    return 0


def _run(args: argparse.Namespace) -> int:
    from musketeer.mpc.runtime import run_party

    config, plan = _load(args)
    config.party(args.party)
    if args.output:
        import os

        from musketeer.outputs import output_target

        args.output = os.path.abspath(args.output)
        output_target("result", args.output)
    tls = None
    if args.tls and args.plain:
        from musketeer.mpc.config import ConfigError

        raise ConfigError("--tls and --plain contradict each other: choose one")
    if args.tls or (not args.plain and not _loopback_only(config)):
        from musketeer.mpc.tls import TLSError, check_party_keys, key_dir

        try:
            tls = check_party_keys(key_dir(args.keys, config, args.party), config.index(args.party), args.party)
        except TLSError as e:
            if args.tls:
                raise
            raise TLSError(f"{e}; parties on other machines connect over TLS by default (pass --plain for "
                           f"unencrypted TCP)") from None
    res = run_party(plan, config, args.party, backend=local_backend(), timeout=args.timeout, tls=tls,
                    progress=args.progress)
    if args.metrics:
        print(" ".join(f"{k}={v:.3f}" for k, v in res.timings.items()), file=sys.stderr)
    if res.frame is None:
        print(f"party {args.party}: done (not a recipient)")
        return 0
    if args.output:
        from musketeer.outputs import output_target, write_frame_atomic

        write_frame_atomic(output_target("result", args.output), res.frame)
    else:
        print(res.frame.to_string(index=False))
    return 0


def _loopback_only(config) -> bool:
    """Every party on this machine's loopback (the demo, tests): plain TCP
    is the default there; anywhere else TLS is."""
    import ipaddress

    def loopback(host: str) -> bool:
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    return all(loopback(p.host) for p in config.parties)


def _keys(args: argparse.Namespace) -> int:
    import os

    from musketeer.mpc.config import load_config
    from musketeer.mpc.tls import make_keys

    config = load_config(args.parties)
    out = args.out or os.path.join(config.base_dir, "mpc_keys")
    dirs = make_keys(config, out, force=args.force)
    print(f"CA: {os.path.join(out, 'ca')} (keep mpyc_ca.key offline)")
    for i, (name, d) in enumerate(dirs.items()):
        print(f"party {name} (MPyC party {i}): copy {d}/ to its machine; run with --tls --keys {d}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from musketeer.mpc.config import ConfigError
    from musketeer.mpc.demo import run_demo

    if args.rows < 1:
        raise ConfigError(f"--rows must be at least 1 (got {args.rows})")
    return run_demo(args.rows, args.only or ["hhi", "credit", "patients"], mpc_only=args.mpc_only, tls=args.tls)
