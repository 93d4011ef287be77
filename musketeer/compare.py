"""`musketeer compare`: run one workflow on several backends, check that
they agree, and report measured against predicted times.

Agreement is checked on the sorted rows of every output (floats within a
relative 1e-6, NULLs equal to NULLs): engines may order ties differently and
sum floats in different orders, but any other difference is a bug worth
failing loudly for.

A backend that fails does not stop the others: it becomes a failed run
(its one-line error), and the outcome (`Comparison.exit_code`) follows the
CLI's rule. 0: every engine answered and they agree. 2: every engine gave
the same user error (a data error, a refusal), which is the answer to a bad
input, as `run` would report it. 1: engines disagree (other rows, an error
on some but not others, different errors) or an engine failed for a reason
of its own (a crash, an internal error, workers lost). The report is
written in every case.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from musketeer.backends.base import RunOptions
from musketeer.cost_model import Cardinality, Profile, single_backend_seconds
from musketeer.ir import MusketeerError, Workflow
from musketeer import api
from musketeer.autoplan import candidates, choose_plan, supports
from musketeer.errors import UsageError
from musketeer.logs import engine_output
from musketeer.progress import Progress
from musketeer.report import one_line

#: How many differing rows the summary and the report show per side.
SAMPLE_ROWS = 5


class ResultsDiffer(MusketeerError):
    """Two backends returned different rows (or one failed): exit 1, naming
    the backend. Carries the runs, so the report can still be written."""

    def __init__(self, message: str, runs: Sequence["BackendRun"] = (),
                 skipped: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.runs, self.skipped = list(runs), list(skipped)


@dataclass
class BackendRun:
    """One backend's run. `measured` and `predicted` are both the seconds of
    a fresh `musketeer run` process, as `explain` prices it: `predicted` is
    explain's number, `measured` the process start (timed once per compare,
    see `process_start`) plus this backend's generate, load and run phases
    in this process (`phases`). `error` is set when the backend failed."""

    backend: str
    measured: float
    predicted: float
    rows: int
    code: str
    outputs: dict[str, pd.DataFrame]
    phases: dict[str, float] = field(default_factory=dict)
    predicted_startup: float = 0.0
    load_average: float | None = None
    error: str | None = None
    #: The engine itself failed (a crash, an internal error, workers lost),
    #: not the input: exit 1 whatever the other engines did.
    engine_fault: bool = False


@dataclass
class RowsDiffer:
    """How one engine's output differs from the first engine's: a one-line
    `summary` and a few rows found on only one side (normalised, sorted)."""

    backend: str
    against: str
    sink: str
    summary: str
    columns: list[str] = field(default_factory=list)
    only_expected: list[tuple] = field(default_factory=list)
    only_actual: list[tuple] = field(default_factory=list)


@dataclass
class Comparison:
    """What `compare_all` found. `problem` is None when the engines agree
    (or all fail alike); `exit_code` is the CLI's (see the module doc) and
    `error` its one-line message when non-zero."""

    runs: list[BackendRun]
    skipped: list[tuple[str, str]]
    problem: str | None
    differences: list[RowsDiffer]
    exit_code: int
    error: str | None
    summary: str


def process_start() -> float:
    """Seconds a fresh interpreter takes to start and import what every
    `musketeer run` imports: the part of a run that a run inside this
    process no longer pays, timed so that measured and predicted seconds
    are on the same footing (the profile's start-up is a fresh process)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import musketeer.api, pandas, pyarrow.parquet"],
                   capture_output=True, timeout=120, check=False)
    return time.perf_counter() - start


def _norm(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    try:
        import decimal

        if isinstance(v, decimal.Decimal):
            return float(v)
    except ImportError:  # pragma: no cover
        pass
    return v


def _rows(frame: pd.DataFrame) -> list[tuple]:
    rows = [tuple(_norm(v) for v in r) for r in frame.astype(object).itertuples(index=False, name=None)]
    return sorted(rows, key=lambda r: [(v is None, str(type(v)), repr(round(v, 6) if isinstance(v, float) else v))
                                       for v in r])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    return a == b


def difference(expected: pd.DataFrame, actual: pd.DataFrame) -> str | None:
    """None when the frames hold the same rows; else a short description."""
    if list(expected.columns) != list(actual.columns):
        return f"columns {list(actual.columns)} instead of {list(expected.columns)}"
    if len(expected) != len(actual):
        return f"{len(actual)} rows instead of {len(expected)}"
    for n, (x, y) in enumerate(zip(_rows(expected), _rows(actual))):
        if len(x) != len(y) or not all(_same(a, b) for a, b in zip(x, y)):
            return f"row {n} (sorted) is {y} instead of {x}"
    return None


def _key(row: tuple) -> tuple:
    return tuple(round(v, 6) if isinstance(v, float) else v for v in row)


def differing_rows(expected: pd.DataFrame, actual: pd.DataFrame,
                   limit: int = SAMPLE_ROWS) -> tuple[list[tuple], list[tuple]]:
    """Up to `limit` rows only in `expected` and up to `limit` only in
    `actual` (as multisets: a duplicate too many counts), with the
    tolerance `difference` uses."""
    if list(expected.columns) != list(actual.columns):
        return [], []
    left, right = _rows(expected), _rows(actual)
    counts: dict[tuple, list[tuple]] = {}
    for row in right:
        counts.setdefault(_key(row), []).append(row)
    only_left: list[tuple] = []
    for row in left:
        bucket = counts.get(_key(row))
        if bucket:
            bucket.pop()
        else:
            only_left.append(row)
    only_right = [r for bucket in counts.values() for r in bucket]
    # Rounding can split two rows that are equal within tolerance: pair them up.
    if len(only_left) * len(only_right) <= 1_000_000:
        for row in list(only_left):
            match = next((r for r in only_right if len(r) == len(row)
                          and all(_same(a, b) for a, b in zip(row, r))), None)
            if match is not None:
                only_left.remove(row)
                only_right.remove(match)
    return only_left[:limit], only_right[:limit]  # both in sorted order


def compare(workflow: Workflow, profile: Profile, backends: Sequence[str] | None = None,
            options: RunOptions | None = None, stream=None) -> tuple[list[BackendRun], list[tuple[str, str]], str]:
    """`compare_all`, raising ResultsDiffer (with the runs) when the engines
    disagree or one of them failed on its own."""
    result = compare_all(workflow, profile, backends, options, stream)
    if result.exit_code == 1:
        raise ResultsDiffer(result.error or "results differ", result.runs, result.skipped)
    return result.runs, result.skipped, result.summary


def _failure(e: BaseException) -> tuple[str, bool]:
    """(one-line error, engine_fault) for an exception out of an engine."""
    if isinstance(e, MusketeerError):
        fault = getattr(e, "exit_code", 2) != 2  # workers lost, an engine failure
        return one_line(e.message) or type(e).__name__, fault
    detail = one_line(str(e))
    return f"internal error: {type(e).__name__}: {detail}" if detail else f"internal error: {type(e).__name__}", True


def compare_all(workflow: Workflow, profile: Profile, backends: Sequence[str] | None = None,
                options: RunOptions | None = None, stream=None) -> Comparison:
    """Run on each available backend (progress on `stream`), whatever the
    others did, and compare what they returned.

    Predictions are explain's (a fresh `musketeer run` process, start-up
    included). Runs happen in this process, where the interpreter and
    Musketeer's imports are already paid, so that part is timed once in a
    fresh process (`process_start`) and added to each measured run; an
    engine's own start (JVM and session, CIEL workers) is inside its run.
    Raises UsageError only when no backend is available at all."""
    stream = stream or sys.stderr
    options = options or RunOptions()
    runs: list[BackendRun] = []
    skipped: list[tuple[str, str]] = []
    card = Cardinality(workflow)
    names = list(backends or candidates())
    progress = Progress(len(names) + 1, stream, title="compare")
    progress("process start-up")
    shared = process_start()
    for n, name in enumerate(names, 1):
        try:
            engine = api.get_backend(name, options)
        except UsageError as e:
            skipped.append((name, str(e)))
            progress.note(f"[{n}/{len(names)}] {name}: skipped ({e})")
            continue
        progress(f"{name}: running")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        start = time.perf_counter()
        predicted = 0.0
        program = None
        try:
            predicted = single_backend_seconds(workflow, card, profile, name, supports({name: engine}))
            program = engine.generate(workflow)
            generated = time.perf_counter()
            with engine_output(name):  # the JVM's WARN lines go to the log (-v), not between ours
                result = engine.run(program, options)
        except Exception as e:  # noqa: BLE001 - a data error, a refusal or a crash: one failed row, the rest still run
            error, fault = _failure(e)
            runs.append(BackendRun(name, time.perf_counter() - start, predicted, 0,
                                   getattr(program, "text", "") if program is not None else "", {}, {},
                                   profile.get(name).startup, load, error=error, engine_fault=fault))
            progress.note(f"[{n}/{len(names)}] {name}: failed: {error}")
            continue
        ran = time.perf_counter() - generated
        inside = float(result.metrics.get("seconds", ran))
        phases = {"process start": shared, "generate": generated - start,
                  "load program": max(0.0, ran - inside), "run": min(inside, ran)}
        rows = sum(len(f) for f in result.outputs.values())
        measured = sum(phases.values())
        runs.append(BackendRun(name, measured, predicted, rows, program.text, result.outputs, phases,
                               profile.get(name).startup, load))
        progress.note(f"[{n}/{len(names)}] {name}: {measured:.3f} s (predicted {predicted:.3f} s)")
    progress.close()
    if not runs:
        raise UsageError(f"none of the backends {', '.join(names)} is available here")
    return outcome(workflow.name, runs, skipped)


def outcome(name: str, runs: Sequence[BackendRun], skipped: Sequence[tuple[str, str]]) -> Comparison:
    """Judge the runs: agreement over the engines that did not fail on their
    own, then the exit code and one-line error (see the module doc)."""
    faults = [r for r in runs if r.engine_fault]
    judged = [r for r in runs if not r.engine_fault]
    problem, differences = (_disagreement(judged) if judged else (None, []))
    if problem is not None:
        code, error = 1, problem
    elif faults:
        f = faults[0]
        more = f" (and {len(faults) - 1} more)" if len(faults) > 1 else ""
        code, error = 1, f"backend {f.backend} failed{more}: {f.error}"
    elif judged[0].error is not None:  # every engine gave the same user error: the answer to a bad input
        code, error = 2, judged[0].error
    else:
        code, error = 0, None
    return Comparison(list(runs), list(skipped), problem, differences, code, error,
                      markdown(name, runs, skipped, problem, differences))


def disagreement(runs: Sequence[BackendRun]) -> str | None:
    """Why the runs disagree (other rows, or an error on some engines but not
    on others, or different errors), or None."""
    return _disagreement(runs)[0]


def _disagreement(runs: Sequence[BackendRun]) -> tuple[str | None, list[RowsDiffer]]:
    """The first reason the runs disagree (or None), and a RowsDiffer for
    each engine whose rows differ from the first engine's."""
    first = runs[0]
    problem: str | None = None
    differences: list[RowsDiffer] = []
    for other in runs[1:]:
        if first.error is not None or other.error is not None:
            if first.error != other.error and problem is None:
                def said(r: BackendRun) -> str:
                    return f"failed: {r.error}" if r.error is not None else f"returned {r.rows:,} rows"
                problem = (f"results differ: backend {other.backend} {said(other)}, "
                           f"backend {first.backend} {said(first)}")
            continue
        for sink, frame in first.outputs.items():
            theirs = other.outputs.get(sink, pd.DataFrame())
            diff = difference(frame, theirs)
            if diff is None:
                continue
            if problem is None:
                problem = (f"results differ: backend {other.backend} disagrees with {first.backend} "
                           f"on output {sink!r}: {diff}")
            only_first, only_other = differing_rows(frame, theirs)
            differences.append(RowsDiffer(other.backend, first.backend, sink, diff, [str(c) for c in frame.columns],
                                          only_first, only_other))
            break  # one output per engine is enough to show
    return problem, differences


def _cell(v: Any) -> str:
    return "NULL" if v is None else repr(v) if isinstance(v, str) else str(v)


def _row(r: tuple) -> str:
    return "(" + ", ".join(_cell(v) for v in r) + ")"


def markdown(name: str, runs: Sequence[BackendRun], skipped: Sequence[tuple[str, str]],
             problem: str | None = None, differences: Sequence[RowsDiffer] = ()) -> str:
    lines = [f"## {name}", "", "| backend | measured s | predicted s | rows |", "|---|---:|---:|---:|"]
    for r in runs:
        rows = f"failed: {r.error}" if r.error is not None else f"{r.rows:,}"
        lines.append(f"| {r.backend} | {r.measured:.3f} | {r.predicted:.3f} | {rows.replace('|', chr(92) + '|')} |")
    ok = [r for r in runs if r.error is None]
    failed = [r for r in runs if r.error is not None]
    lines.append("")
    if problem is not None:
        lines.append(f"Results DIFFER: {problem}.")
        for d in differences:
            lines.append(f"- {d.backend} vs {d.against}, output {d.sink!r} {tuple(d.columns)}: {d.summary}")
            lines += [f"  - only in {d.against}: {_row(r)}" for r in d.only_expected]
            lines += [f"  - only in {d.backend}: {_row(r)}" for r in d.only_actual]
    elif failed and ok:
        names = ", ".join(r.backend for r in failed)
        lines.append(f"{len(failed)} of {len(runs)} backend(s) failed ({names}); the other {len(ok)} agree.")
    elif failed and any(r.engine_fault for r in failed):
        lines.append(f"All {len(runs)} backend(s) failed.")
    elif failed:
        lines.append(f"All {len(runs)} backend(s) fail with the same error.")
    else:
        fastest = min(ok, key=lambda r: r.measured)
        lines.append(f"All {len(runs)} backend(s) agree; fastest: {fastest.backend}.")
    if skipped:
        lines.append("Not available: " + ", ".join(b for b, _ in skipped) + ".")
    return "\n".join(lines) + "\n"


def html_report(workflow: Workflow, profile: Profile, runs: Sequence[BackendRun],
                skipped: Sequence[tuple[str, str]], options: RunOptions | None = None,
                problem: str | None = None, differences: Sequence[RowsDiffer] = ()) -> str:
    """The HTML report: see report_html.py. The plan picture is left out
    (not the report) if planning itself fails."""
    from musketeer.report_html import render

    try:
        p, _, _ = choose_plan(workflow, profile, options, [r.backend for r in runs if r.error is None])
    except MusketeerError:
        p = None
    return render(workflow, profile, runs, skipped, p, differ=problem, differences=differences)
