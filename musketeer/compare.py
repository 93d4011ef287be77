"""`musketeer compare`: run one workflow on several backends, check that
they agree, and report measured against predicted times.

Agreement is checked on the sorted rows of every output (floats within a
relative 1e-6, NULLs equal to NULLs): engines may order ties differently and
sum floats in different orders, but any other difference is a bug worth
failing loudly for.
"""

from __future__ import annotations

import html
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from musketeer.backends.base import RunOptions
from musketeer.cost_model import Cardinality, Profile, single_backend_seconds
from musketeer.ir import MusketeerError, Workflow
from musketeer import api
from musketeer.autoplan import CANDIDATES, choose_plan, supports
from musketeer.costreport import plan_dot, plan_svg
from musketeer.errors import UsageError

TEMPLATE = Path(__file__).parent / "templates" / "compare.html.j2"


class ResultsDiffer(MusketeerError):
    """Two backends returned different rows: exit 1, naming the backend."""


@dataclass
class BackendRun:
    backend: str
    measured: float
    predicted: float
    rows: int
    code: str
    outputs: dict[str, pd.DataFrame]


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


def bar_chart(runs: Sequence[BackendRun]) -> str:
    """Inline SVG: measured and predicted seconds per backend, side by side."""
    top = max([max(r.measured, r.predicted if math.isfinite(r.predicted) else 0) for r in runs] + [1e-9])
    bar_w, gap, height = 28, 30, 200
    width = len(runs) * (2 * bar_w + gap) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 60}">',
             '<text x="5" y="14" font-size="12">seconds: measured (dark) / predicted (light)</text>']
    for i, r in enumerate(runs):
        x = 20 + i * (2 * bar_w + gap)
        for j, (value, colour) in enumerate(((r.measured, "#1f78b4"), (r.predicted, "#a6cee3"))):
            v = value if math.isfinite(value) else 0.0
            h = height * v / top
            parts.append(f'<rect x="{x + j * bar_w}" y="{20 + height - h:.1f}" width="{bar_w - 2}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{v:.3f} s</title></rect>')
        parts.append(f'<text x="{x}" y="{height + 40}" font-size="12">{html.escape(r.backend)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def compare(workflow: Workflow, profile: Profile, backends: Sequence[str] | None = None,
            options: RunOptions | None = None, stream=None) -> tuple[list[BackendRun], list[tuple[str, str]], str]:
    """Run on each available backend (progress on `stream`); raise
    ResultsDiffer naming the first backend whose rows differ from the first's.

    Runs happen in this process, so the interpreter and Musketeer's imports
    are already paid: a profile's start-up is a whole fresh process, and
    the part every process pays alike (the local engine's start-up) is
    taken off each prediction to compare like with like. An engine's own
    start (JVM and session, CIEL workers) stays in both numbers."""
    stream = stream or sys.stderr
    options = options or RunOptions()
    runs: list[BackendRun] = []
    skipped: list[tuple[str, str]] = []
    card = Cardinality(workflow)
    common = profile.get("local").startup
    names = list(backends or CANDIDATES)
    for n, name in enumerate(names, 1):
        try:
            engine = api.get_backend(name, options)
        except UsageError as e:
            skipped.append((name, str(e)))
            stream.write(f"[{n}/{len(names)}] {name}: skipped ({e})\n")
            continue
        stream.write(f"[{n}/{len(names)}] {name}: running...\n")
        stream.flush()
        program = engine.generate(workflow)
        start = time.perf_counter()
        result = engine.run(program, options)
        seconds = time.perf_counter() - start
        predicted = max(0.0, single_backend_seconds(workflow, card, profile, name, supports({name: engine}))
                        - common)
        rows = sum(len(f) for f in result.outputs.values())
        runs.append(BackendRun(name, seconds, predicted, rows, program.text, result.outputs))
        stream.write(f"[{n}/{len(names)}] {name}: {seconds:.3f} s (predicted {predicted:.3f} s)\n")
    if not runs:
        raise UsageError(f"none of the backends {', '.join(names)} is available here")
    first = runs[0]
    for other in runs[1:]:
        for sink, frame in first.outputs.items():
            diff = difference(frame, other.outputs.get(sink, pd.DataFrame()))
            if diff is not None:
                raise ResultsDiffer(f"results differ: backend {other.backend} disagrees with {first.backend} "
                                    f"on output {sink!r}: {diff}")
    return runs, skipped, markdown(workflow.name, runs, skipped)


def markdown(name: str, runs: Sequence[BackendRun], skipped: Sequence[tuple[str, str]]) -> str:
    lines = [f"## {name}", "", "| backend | measured s | predicted s | rows |", "|---|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r.backend} | {r.measured:.3f} | {r.predicted:.3f} | {r.rows:,} |")
    fastest = min(runs, key=lambda r: r.measured)
    lines += ["", f"All {len(runs)} backend(s) agree; fastest: {fastest.backend}."]
    if skipped:
        lines.append("Not available: " + ", ".join(b for b, _ in skipped) + ".")
    return "\n".join(lines) + "\n"


def html_report(workflow: Workflow, profile: Profile, runs: Sequence[BackendRun],
                skipped: Sequence[tuple[str, str]], options: RunOptions | None = None) -> str:
    p, _, _ = choose_plan(workflow, profile, options, [r.backend for r in runs])
    dot = plan_dot(workflow, p)
    svg = plan_svg(workflow, p)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    plan_text = " -> ".join(f"{s.backend} ({len(s.ops)} ops, est {s.estimate:.3f} s)" for s in p.stages)
    return template.render(name=workflow.name, profile=profile.source, agree=True, rows=runs, skipped=skipped,
                           chart=bar_chart(runs), plan_text=plan_text, plan_svg=svg, plan_dot=dot)
