"""`musketeer` command line: argument parsing and dispatch, nothing else.

The one policy that lives here is how failures end the process, because it
is the same for every command:

- a user error (`ir.MusketeerError`, or an OSError on a user's file) prints
  one line (plus source line and caret when its location is known) and exits
  with 2; `--debug` adds the traceback; a MusketeerError with an `exit_code`
  (a runtime failure such as every ciel worker dying) exits with that code;
- a usage error from argparse exits with 2 as well;
- anything else is our bug: one line saying so, exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from musketeer.ir import MusketeerError
from musketeer import __version__, logs
from musketeer.inline import workflow_source
from musketeer.render import DEFAULT_MAX_ROWS
from musketeer.report import PROG, format_error, format_internal, format_os_error

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2


def _command(name: str):  # noqa: ANN202 - a handler (args) -> exit code
    """`musketeer.commands.<name>`, imported when the command runs: the
    commands import the engines' libraries (pandas, pyarrow, sqlglot), which
    `--help`, `--version` and usage errors never need."""

    def handler(args: argparse.Namespace) -> int:
        from musketeer import commands

        return getattr(commands, name)(args)

    return handler


def _table_arg(text: str) -> tuple[str, str]:
    from musketeer.catalog import parse_table_binding

    try:
        return parse_table_binding(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _row_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a row count (0 = all rows), got {text!r}")
    return n


def cluster_parser() -> argparse.ArgumentParser:
    """A parent parser with every registered backend's cluster flags
    (`--spark-master`, ...): each stores into `RunOptions.extra[key]`."""
    from musketeer.backends import registry

    cluster = argparse.ArgumentParser(add_help=False)
    for _, option in registry.cluster_options():
        cluster.add_argument(option.flag, dest=option.key, metavar=option.metavar, help=option.help)
    return cluster


def run_options(args: argparse.Namespace) -> dict[str, object]:
    """`RunOptions.extra` from parsed flags: cluster addresses and --profile."""
    from musketeer.backends import registry

    keys = [option.key for _, option in registry.cluster_options()] + ["profile"]
    return {key: value for key in keys if (value := getattr(args, key, None))}


@dataclass(frozen=True)
class Parents:
    """The flags several commands share, each declared once here; commands
    list the groups they take (`parents=[...]`)."""

    debug: argparse.ArgumentParser  # --debug after the subcommand too
    workflow: argparse.ArgumentParser  # WORKFLOW, --data-dir, --table
    backend: argparse.ArgumentParser  # --backend
    cluster: argparse.ArgumentParser  # every backend's cluster flags (the registry)
    profile: argparse.ArgumentParser  # --profile


def shared_flags() -> Parents:
    from musketeer.backends import registry

    # --debug is also accepted after the subcommand; SUPPRESS keeps the
    # subparser from resetting a --debug given before it.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    debug.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    debug.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    workflow = argparse.ArgumentParser(add_help=False, parents=[debug])
    workflow.add_argument("workflow", nargs="?", help="workflow file: .sql, .py (defining `workflow`), "
                                                      "or .json as written by explain --json; - for SQL on stdin")
    workflow.add_argument("-c", dest="sql", metavar="SQL", help="the workflow as SQL text instead of a file")
    workflow.add_argument("--data-dir", metavar="DIR",
                          help="directory of tables: table t is DIR/t.parquet or DIR/t.csv")
    workflow.add_argument("--table", metavar="NAME=PATH", dest="table_bindings", action="append",
                          type=_table_arg, default=[], help="bind table NAME to a file (repeatable)")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--backend", default="auto",
                         help=f"engine: auto (default: the cost model picks), {', '.join(registry.names())}")
    profile = argparse.ArgumentParser(add_help=False)
    profile.add_argument("--profile", metavar="PATH",
                         help="cost profile (default $MUSKETEER_PROFILE or ~/.config/musketeer/profile.json)")
    return Parents(debug, workflow, backend, cluster_parser(), profile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write a data workflow once; run it on the engine that suits it.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="also log what engines print (Spark's and the JVM's warnings); -vv: debug detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or notes; only errors and results")
    flags = shared_flags()
    common, backend, cluster, profile = flags.workflow, flags.backend, flags.cluster, flags.profile

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("compile", parents=[common, backend, profile],
                       help="generate a standalone program for a backend")
    p.add_argument("-o", "--output", metavar="OUT", help="write the program here (default or '-': stdout)")
    p.set_defaults(handler=_command("cmd_compile"))

    p = sub.add_parser("run", parents=[common, backend, cluster, profile],
                       help="run a workflow and print or save its result")
    p.add_argument("--output", metavar="PATH",
                   help="write the result to PATH (.csv or .parquet) instead of printing it")
    p.add_argument("--max-rows", type=_row_count, default=DEFAULT_MAX_ROWS, metavar="N",
                   help=f"print at most N rows (default {DEFAULT_MAX_ROWS}; 0 = all)")
    p.add_argument("--metrics", action="store_true", help="print timings and backend metrics to stderr")
    p.set_defaults(handler=_command("cmd_run"))

    p = sub.add_parser("explain", parents=[common, profile], help="print the workflow's IR after optimization")
    p.add_argument("--dot", metavar="FILE", help="also write the plan as Graphviz DOT")
    p.add_argument("--svg", metavar="FILE", help="also draw the plan as SVG (Graphviz's dot, else a built-in layout)")
    p.add_argument("--json", metavar="FILE", help="also write the IR as JSON (runnable as a workflow)")
    p.add_argument("--no-passes", action="store_true", help="show the IR as lowered, before optimization")
    p.set_defaults(handler=_command("cmd_explain"))
    p = sub.add_parser("capabilities", parents=[flags.debug],
                       help="print which operators, functions, ... each backend implements")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--write", metavar="FILE", help="write the Markdown matrix to FILE (docs/capabilities.md)")
    target.add_argument("--check", metavar="FILE", help="exit 1 if FILE is not what --write would write")
    p.set_defaults(handler=_command("cmd_capabilities"), table_bindings=[])
    from musketeer.mpc_cli import register as register_mpc

    register_mpc(sub)
    from musketeer.ciel_cli import register as register_ciel

    register_ciel(sub)
    from musketeer.sky_cli import register as register_sky

    register_sky(sub)
    from musketeer.cost_cli import register as register_cost

    register_cost(sub, flags)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2), --help and --version (0)
        return e.code if isinstance(e.code, int) else EXIT_USER
    args.tables = dict(args.table_bindings)
    args.options = run_options(args)
    debug: bool = args.debug
    logs.configure(logs.QUIET if args.quiet else args.verbose)
    try:
        if hasattr(args, "sql"):  # WORKFLOW, '-' (stdin) or -c SQL
            args.workflow = workflow_source(args.workflow, args.sql)
        return args.handler(args)
    except MusketeerError as e:
        return _fail(format_error(e), getattr(e, "exit_code", EXIT_USER), debug)
    except BrokenPipeError:
        _silence_stdout()  # `musketeer run ... | head`: not an error
        return EXIT_INTERNAL
    except OSError as e:
        return _fail(format_os_error(e), EXIT_USER, debug)
    except KeyboardInterrupt:
        return _fail(f"{PROG}: interrupted", 130, debug)
    except Exception as e:  # noqa: BLE001 - the last line of defence
        return _fail(format_internal(e), EXIT_INTERNAL, debug)


def _fail(message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(message, file=sys.stderr)
    return code


def _silence_stdout() -> None:
    """Python would complain again while flushing stdout at exit."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
