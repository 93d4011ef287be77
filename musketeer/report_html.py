"""The `musketeer compare --report` page: one self-contained HTML file.

What a person wants from it, top to bottom: did the engines agree, which
was fastest and how far off the cost model was (a table, then charts from
report_charts.py), where each run's time went (start-up vs compute), the
plan `--backend auto` would choose (plan_picture.py), what machine this was
measured on (CPU, memory, load, library versions: numbers from a busy
laptop and an idle server differ), and each engine's generated program,
folded and highlighted with pygments. A backend that failed is shown with
its error instead of a time. Nothing is loaded from the network.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2

from musketeer.cost_model import Plan, Profile
from musketeer.ir import Workflow
from musketeer.plan_picture import plan_svg
from musketeer.report_charts import breakdown_chart, stages_chart, totals_chart

TEMPLATE = Path(__file__).parent / "templates" / "compare.html.j2"

#: Libraries whose versions change what is measured.
LIBRARIES = ("musketeer", "pandas", "pyarrow", "numpy", "dask", "distributed", "pyspark", "duckdb", "polars")


def highlight(code: str) -> str:
    """Python source as highlighted HTML (pygments, with line numbers)."""
    from pygments import highlight as pyg
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return pyg(code, PythonLexer(), HtmlFormatter(linenos="table", cssclass="highlight"))


def code_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(cssclass="highlight").get_style_defs(".highlight")


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(runs: Sequence[Any]) -> list[tuple[str, str]]:
    """(what, value) rows describing where the numbers were measured."""
    rows = [("host", platform.node()), ("system", f"{platform.system()} {platform.release()} ({platform.machine()})"),
            ("CPU", f"{_cpu_name()}, {os.cpu_count()} logical core(s)")]
    mem = _memory_bytes()
    if mem:
        rows.append(("memory", f"{mem / 2**30:.1f} GiB"))
    loads = [f"{r.backend} {r.load_average:.2f}" for r in runs if getattr(r, "load_average", None) is not None]
    if loads:
        rows.append(("load average (1 min) as each run started", ", ".join(loads)))
    if hasattr(os, "getloadavg"):
        rows.append(("load average now (1, 5, 15 min)", ", ".join(f"{x:.2f}" for x in os.getloadavg())))
    rows.append(("Python", f"{platform.python_implementation()} {platform.python_version()}"))
    versions = []
    for lib in LIBRARIES:
        try:
            versions.append(f"{lib} {metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            continue
    rows.append(("libraries", ", ".join(versions)))
    rows.append(("command", " ".join(os.path.basename(a) if n == 0 else a for n, a in enumerate(sys.argv))))
    return rows


def render(workflow: Workflow, profile: Profile, runs: Sequence[Any], skipped: Sequence[tuple[str, str]],
           plan: Plan | None = None, differ: str | None = None, differences: Sequence[Any] = ()) -> str:
    """The whole page. `runs` are compare.BackendRun (an `error` marks a
    failed backend); `differ` says how results disagreed, if they did, and
    `differences` (compare.RowsDiffer) which engines' rows differ, with a
    few rows found on only one side."""
    ok = [r for r in runs if r.error is None]
    failed = [r for r in runs if r.error is not None]
    fastest = min(ok, key=lambda r: r.measured).backend if ok else None
    if differ:
        verdict, verdict_class = f"Results DIFFER: {differ}", "bad"
    elif failed:
        verdict, verdict_class = (f"{len(failed)} of {len(runs)} backend(s) failed; "
                                  f"the other {len(ok)} agree"), "bad"
    else:
        verdict, verdict_class = f"All {len(ok)} backend(s) agree", "good"
    cores = os.cpu_count() or 1
    loads = [r.load_average for r in runs if getattr(r, "load_average", None) is not None]
    busy = ""
    if loads and max(loads) > cores:
        busy = (f"The machine was busy: load average up to {max(loads):.1f} on {cores} core(s) while the engines "
                "ran, so measured times are inflated against the predictions.")
    plan_text = ""
    svg = ""
    stages = ""
    if plan is not None:
        plan_text = " -> ".join(f"{s.backend} ({len(s.ops)} ops, est. {s.estimate:.3f} s)" for s in plan.stages)
        svg = plan_svg(workflow, plan)
        seen: set[str] = set()
        startups = []
        for stage in plan.stages:  # an engine's start-up is charged once, with its first stage
            startups.append(0.0 if stage.backend in seen else profile.get(stage.backend).startup)
            seen.add(stage.backend)
        stages = stages_chart(plan.stages, startups)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        name=workflow.name, profile=profile.source, verdict=verdict, verdict_class=verdict_class,
        fastest=fastest, runs=runs, skipped=skipped, busy=busy, differences=differences,
        totals_svg=totals_chart(runs) if runs else "", breakdown_svg=breakdown_chart(runs),
        plan_text=plan_text, plan_svg=svg, stages_svg=stages, machine=machine(runs),
        code={r.backend: highlight(r.code) for r in runs if r.code}, code_css=code_css(),
        lines={r.backend: r.code.count("\n") + 1 for r in runs if r.code},
        generated=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )
