"""CLI for the cost model: `calibrate`, `compare`, and the flags it adds to
`explain` (--svg, --profile), `run` and `compile` (--profile).

Registered from cli.py like the other optional command groups, so the cost
model's flags live next to the code that reads them.
"""

from __future__ import annotations

import argparse
import sys

from musketeer.backends.base import RunOptions
from musketeer.cost_model import load_profile
from musketeer import api
from musketeer.outputs import check_destination, commit_text_files
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


def register(sub: argparse._SubParsersAction) -> None:
    profile = argparse.ArgumentParser(add_help=False)
    profile.add_argument("--profile", metavar="PATH",
                         help="cost profile (default $MUSKETEER_PROFILE or ~/.config/musketeer/profile.json)")
    for name in ("explain", "run", "compile"):
        if name in sub.choices:
            sub.choices[name].add_argument("--profile", metavar="PATH", help=argparse.SUPPRESS)
    if "explain" in sub.choices:
        sub.choices["explain"].add_argument("--svg", metavar="FILE",
                                            help="also draw the plan as SVG (needs Graphviz's dot)")

    p = sub.add_parser("calibrate", parents=[profile], help="measure each backend here; write a cost profile")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--backends", type=_backend_list, help="comma-separated (default: every available one)")
    p.add_argument("--sizes", type=_sizes, help="rows per microbenchmark, comma-separated "
                                                "(default 50000,200000,1000000)")
    p.add_argument("--loops-only", action="store_true",
                   help="re-measure only the loop costs (at the two smallest sizes) over the profile's rates")
    p.set_defaults(handler=cmd_calibrate, table_bindings=[])

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("workflow", help="workflow file (.sql, .py or .json)")
    common.add_argument("--data-dir", metavar="DIR", help="directory of tables")
    common.add_argument("--table", metavar="NAME=PATH", dest="table_bindings", action="append",
                        type=_table_arg, default=[], help="bind table NAME to a file (repeatable)")
    p = sub.add_parser("compare", parents=[common, profile],
                       help="run on several backends, check they agree, report times")
    p.add_argument("--backends", type=_backend_list, help="comma-separated (default local,dask,spark,ciel)")
    p.add_argument("--report", metavar="FILE", help="write an HTML report here")
    p.set_defaults(handler=cmd_compare)


def _table_arg(text: str) -> tuple[str, str]:
    from musketeer.cli import _table_arg as parse

    return parse(text)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from musketeer.autoplan import available_engines
    from musketeer.calibrate import DEFAULT_SIZES, calibrate, recalibrate_loops

    options = RunOptions(extra=dict(getattr(args, "options", {}) or {}))
    engines = available_engines(options, args.backends)
    if not engines:
        from musketeer.errors import UsageError

        raise UsageError(f"no backend to calibrate: none of {', '.join(args.backends or [])} is available")
    run = recalibrate_loops if getattr(args, "loops_only", False) else calibrate
    _, path = run(engines, args.sizes or DEFAULT_SIZES, args.profile, options)
    print(f"{PROG}: wrote profile for {', '.join(engines)} to {path}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from musketeer.compare import ResultsDiffer, compare, html_report

    if args.report:
        check_destination(args.report, "--report")
    profile = load_profile(args.profile)
    workflow = api.plan_workflow(args.workflow, data_dir=args.data_dir, tables=args.tables)
    options = RunOptions(extra=dict(getattr(args, "options", {}) or {}))
    try:
        runs, skipped, summary = compare(workflow, profile, args.backends, options)
    except ResultsDiffer as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    if args.report:
        commit_text_files({args.report: html_report(workflow, profile, runs, skipped, options)})
    sys.stdout.write(summary)
    return 0
