"""What each CLI subcommand does, given parsed arguments.

Kept apart from argument parsing (cli.py) so the parser stays a readable
list of flags, and apart from formatting (render.py, report.py) so output
shapes can be tested without running anything. Each command returns the
process exit code; errors propagate as exceptions for cli.main to report.
"""

from __future__ import annotations

import argparse
import os
import sys

from musketeer import api
from musketeer.logs import engine_output, quiet
from musketeer.outputs import check_destination, commit_text_files
from musketeer.render import format_metrics, format_table
from musketeer.report import PROG


def _note(text: str) -> None:
    """Progress and warnings go to stderr, so stdout is only the data; -q
    keeps only the warnings."""
    if text.startswith("warning") or not quiet():
        print(f"{PROG}: {text}", file=sys.stderr)


def cmd_compile(args: argparse.Namespace) -> int:
    if args.backend == "auto" and args.output and os.path.isdir(args.output):
        return _compile_plan(args)
    to_file = args.output not in (None, "-")
    if to_file:
        check_destination(args.output, "--output")
    program = api.compile_workflow(args.workflow, backend=args.backend,
                                   data_dir=args.data_dir, tables=args.tables, options=args.options)
    if to_file:
        commit_text_files({args.output: program.text})
    else:
        sys.stdout.write(program.text)
    return 0


def _compile_plan(args: argparse.Namespace) -> int:
    """`compile --backend auto -o DIR`: one program per stage of the chosen
    plan, plus DIR/run_plan.py running them in order."""
    files = api.compile_plan(args.workflow, args.output, data_dir=args.data_dir, tables=args.tables,
                             options=args.options)
    commit_text_files(files)
    _note(f"wrote {len(files) - 1} stage program(s) and run_plan.py to {args.output}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Outputs written to files are reported on stderr; every other output
    is printed, the result as a bare table and the rest under a heading."""
    with engine_output(args.backend):  # the engines' own stderr chatter goes to the log (-v)
        run = api.execute(args.workflow, backend=args.backend, data_dir=args.data_dir,
                          tables=args.tables, output=args.output, options=args.options)
    outputs = run.result.outputs
    for warning in run.result.metrics.get("warnings", ()):
        _note(f"warning: {warning}")
    for target in run.written:
        rows = len(outputs[target.sink])
        _note(f"wrote {rows:,} row{'' if rows == 1 else 's'} to {target.path}")
    written = {t.sink for t in run.written}
    printed = [s.name for s in run.workflow.sinks if s.name not in written and s.name in outputs]
    max_rows = args.max_rows or None
    for n, name in enumerate(printed):
        if printed != ["result"]:
            sys.stdout.write(("\n" if n else "") + f"-- {name}\n")
        sys.stdout.write(format_table(outputs[name], max_rows))
    if args.metrics:
        sys.stderr.write(format_metrics(run.result.metrics))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """The IR text, then the cost section: estimates per available backend
    and the plan `--backend auto` would choose (--dot/--svg draw it)."""
    svg = args.svg
    for flag, path in (("--dot", args.dot), ("--json", args.json), ("--svg", svg)):
        if path:
            check_destination(path, flag)
    workflow = api.plan_workflow(args.workflow, data_dir=args.data_dir, tables=args.tables,
                                 passes=not args.no_passes)
    from musketeer.cost_model import load_profile
    from musketeer.autoplan import available_engines, supports
    from musketeer.costreport import cost_section, plan_dot, plan_svg

    engines = available_engines(None)
    section, chosen = cost_section(workflow, load_profile(args.profile), list(engines),
                                   supports(engines))
    files = {}
    if args.dot:
        files[args.dot] = plan_dot(workflow, chosen)
    if svg:
        files[svg] = plan_svg(workflow, chosen)
    if args.json:
        files[args.json] = workflow.to_json()
    commit_text_files(files)
    sys.stdout.write(workflow.to_text())
    sys.stdout.write(section)
    return 0


def capabilities_markdown(builtin_only: bool = False) -> str:
    """The capability matrix of every registered backend (docs/capabilities.md:
    the built-ins only, so an installed plugin does not make it stale)."""
    from musketeer.backends import registry
    from musketeer.backends.capabilities import matrix_markdown

    names = [n for n in registry.names() if not builtin_only or n in registry.BUILTINS]
    return matrix_markdown({n: registry.descriptor(n).capabilities for n in names})


def cmd_capabilities(args: argparse.Namespace) -> int:
    """Print the capability matrix of every registered backend, or `--write
    PATH` it for the built-ins; `--check PATH` exits 1 when that file differs
    from what would be written (CI's stale check)."""
    text = capabilities_markdown(builtin_only=bool(args.check or args.write))
    if args.check:
        try:
            current = open(args.check, encoding="utf-8").read()
        except FileNotFoundError:
            current = None
        if current != text:
            _note(f"{args.check} is stale: run `musketeer capabilities --write {args.check}`")
            return 1
        return 0
    if args.write:
        check_destination(args.write, "--write")
        commit_text_files({args.write: text})
        _note(f"wrote {args.write}")
    else:
        sys.stdout.write(text)
    return 0
