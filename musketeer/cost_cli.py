"""CLI for the cost model: `calibrate` and `compare`.

Registered from cli.py like the other optional command groups; the flags
they share with other commands (workflow and tables, --profile, cluster
flags) are declared once in cli.py.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from musketeer.report import PROG


def _backend_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected backend names separated by commas")
    return names


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(n) for n in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError(f"expected row counts >= 100 separated by commas, got {text!r}")
    return sizes


def register(sub: argparse._SubParsersAction, flags: Any) -> None:
    """`calibrate` and `compare`, over the shared flags cli.py declares
    (`flags`: cli.Parents)."""
    p = sub.add_parser("calibrate", parents=[flags.debug, flags.profile, flags.cluster],
                       help="measure each backend here; write a cost profile")
    p.add_argument("--backends", type=_backend_list, help="comma-separated (default: every available one)")
    p.add_argument("--sizes", type=_sizes, help="rows per microbenchmark, comma-separated "
                                                "(default 50000,200000,1000000)")
    p.add_argument("--loops-only", action="store_true",
                   help="re-measure only the loop costs (at the two smallest sizes) over the profile's rates")
    p.set_defaults(handler=cmd_calibrate, table_bindings=[])

    p = sub.add_parser("compare", parents=[flags.workflow, flags.profile, flags.cluster],
                       help="run on several backends, check they agree, report times")
    p.add_argument("--backends", type=_backend_list, help="comma-separated (default: every registered one)")
    p.add_argument("--report", metavar="FILE", help="write an HTML report here")
    p.set_defaults(handler=cmd_compare)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from musketeer.autoplan import available_engines
    from musketeer.backends.base import RunOptions
    from musketeer.calibrate import DEFAULT_SIZES, calibrate, recalibrate_loops

    options = RunOptions(extra=dict(args.options))
    engines = available_engines(options, args.backends)
    if not engines:
        from musketeer.errors import UsageError

        raise UsageError(f"no backend to calibrate: none of {', '.join(args.backends or [])} is available")
    run = recalibrate_loops if args.loops_only else calibrate
    _, path = run(engines, args.sizes or DEFAULT_SIZES, args.profile, options)
    print(f"{PROG}: wrote profile for {', '.join(engines)} to {path}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Exit 0: all engines agree. 2: a usage error before anything ran, or
    every engine gave the same user error (bad input). 1: engines disagree or
    one failed on its own (crash, internal error). The report (--report) and
    the Markdown summary are written in every case once the engines ran."""
    from musketeer import api
    from musketeer.backends.base import RunOptions
    from musketeer.compare import compare_all, html_report
    from musketeer.cost_model import load_profile
    from musketeer.outputs import check_destination, commit_text_files

    if args.report:
        check_destination(args.report, "--report")
    profile = load_profile(args.profile)
    workflow = api.plan_workflow(args.workflow, data_dir=args.data_dir, tables=args.tables)
    options = RunOptions(extra=dict(args.options))
    result = compare_all(workflow, profile, args.backends, options)
    sys.stdout.write(result.summary)
    sys.stdout.flush()
    if args.report:  # the report shows what each engine did, failed or not
        commit_text_files({args.report: html_report(workflow, profile, result.runs, result.skipped, options,
                                                    result.problem, result.differences)})
    if result.exit_code:
        print(f"{PROG}: error: {result.error}", file=sys.stderr)
    return result.exit_code
