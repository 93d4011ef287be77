"""`musketeer compare`: run one workflow on several backends, check that
they agree, and report measured against predicted times.

Agreement is checked on the sorted rows of every output (floats within a
relative 1e-6, NULLs equal to NULLs): engines may order ties differently and
sum floats in different orders, but any other difference is a bug worth
failing loudly for.
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


def compare(workflow: Workflow, profile: Profile, backends: Sequence[str] | None = None,
            options: RunOptions | None = None, stream=None) -> tuple[list[BackendRun], list[tuple[str, str]], str]:
    """Run on each available backend (progress on `stream`); raise
    ResultsDiffer naming the first backend whose rows differ from the first's.

    Predictions are explain's (a fresh `musketeer run` process, start-up
    included). Runs happen in this process, where the interpreter and
    Musketeer's imports are already paid, so that part is timed once in a
    fresh process (`process_start`) and added to each measured run; an
    engine's own start (JVM and session, CIEL workers) is inside its run."""
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
        predicted = single_backend_seconds(workflow, card, profile, name, supports({name: engine}))
        program = None
        try:
            program = engine.generate(workflow)
            generated = time.perf_counter()
            with engine_output(name):  # the JVM's WARN lines go to the log (-v), not between ours
                result = engine.run(program, options)
        except MusketeerError as e:  # a data error, a refusal: shown in the report, compared below
            runs.append(BackendRun(name, time.perf_counter() - start, predicted, 0,
                                   program.text if program is not None else "", {}, {}, profile.get(name).startup,
                                   load, error=str(e)))
            progress.note(f"[{n}/{len(names)}] {name}: failed: {e}")
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
    problem = disagreement(runs)
    if problem is not None:
        raise ResultsDiffer(problem, runs, skipped)
    return runs, skipped, markdown(workflow.name, runs, skipped)


def disagreement(runs: Sequence[BackendRun]) -> str | None:
    """Why the runs disagree (other rows, or an error on some engines but not
    on others, or different errors), or None."""
    first = runs[0]
    for other in runs[1:]:
        if first.error is not None or other.error is not None:
            if first.error != other.error:
                def said(r: BackendRun) -> str:
                    return f"failed: {r.error}" if r.error is not None else f"returned {r.rows:,} rows"
                return (f"results differ: backend {other.backend} {said(other)}, "
                        f"backend {first.backend} {said(first)}")
            continue
        for sink, frame in first.outputs.items():
            diff = difference(frame, other.outputs.get(sink, pd.DataFrame()))
            if diff is not None:
                return (f"results differ: backend {other.backend} disagrees with {first.backend} "
                        f"on output {sink!r}: {diff}")
    return None


def markdown(name: str, runs: Sequence[BackendRun], skipped: Sequence[tuple[str, str]]) -> str:
    lines = [f"## {name}", "", "| backend | measured s | predicted s | rows |", "|---|---:|---:|---:|"]
    for r in runs:
        rows = f"failed: {r.error}" if r.error is not None else f"{r.rows:,}"
        lines.append(f"| {r.backend} | {r.measured:.3f} | {r.predicted:.3f} | {rows} |")
    ok = [r for r in runs if r.error is None]
    if ok:
        fastest = min(ok, key=lambda r: r.measured)
        lines += ["", f"All {len(runs)} backend(s) agree; fastest: {fastest.backend}."]
    else:
        lines += ["", f"All {len(runs)} backend(s) fail with the same error."]
    if skipped:
        lines.append("Not available: " + ", ".join(b for b, _ in skipped) + ".")
    return "\n".join(lines) + "\n"


def html_report(workflow: Workflow, profile: Profile, runs: Sequence[BackendRun],
                skipped: Sequence[tuple[str, str]], options: RunOptions | None = None) -> str:
    """The HTML report: see report_html.py."""
    from musketeer.report_html import render

    p, _, _ = choose_plan(workflow, profile, options, [r.backend for r in runs if r.error is None])
    return render(workflow, profile, runs, skipped, p)
