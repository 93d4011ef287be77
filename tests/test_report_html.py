"""The `musketeer compare` HTML report: charts with axes, values and a
legend (matplotlib SVG, parsed here as XML), a failed backend with its
error, machine and version information, folded highlighted code; and the
predictions it shows are explain's (the oracle: cost_section's numbers)."""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from musketeer import api, cli
from musketeer.autoplan import available_engines, supports
from musketeer.compare import BackendRun, compare
from musketeer.cost_model import Cardinality, Profile, single_backend_seconds
from musketeer.cost_model.costs import default_profiles
from musketeer.costreport import cost_section
from musketeer.report_charts import seconds_label
from musketeer.report_html import render

SVG = "{http://www.w3.org/2000/svg}"

def _svgs(html: str) -> dict[str, ET.Element]:
    """figure id -> the parsed SVG inside it."""
    out = {}
    for m in re.finditer(r'<figure id="([\w-]+)">(.*?)<figcaption>', html, re.S):
        out[m.group(1)] = ET.fromstring(m.group(2).strip())
    return out


def _seconds(label: str) -> float:
    number, unit = label.split()
    return float(number.replace(",", "")) * {"s": 1.0, "ms": 1e-3, "µs": 1e-6}[unit]


def _texts(svg: ET.Element) -> list[str]:
    return [" ".join("".join(t.itertext()).split()) for t in svg.iter(f"{SVG}text")]


def test_compare_predicts_what_explain_says(small: Path) -> None:
    """The report's predicted seconds are explain's for the same backend,
    start-up included (compare once showed 0.000 s for local where explain
    said 0.740 s: it took the local start-up off every prediction)."""
    profile = Profile(dict(default_profiles()), source="defaults")
    wf = api.plan_workflow(small / "q.sql", data_dir=str(small / "data"))
    runs, _, summary = compare(wf, profile, ["local"], stream=open(small / "log", "w"))
    engines = available_engines(None, ["local"])
    section, _ = cost_section(wf, profile, ["local"], supports(engines))
    explain_local = float(re.search(r"^local\s+([\d.]+) s$", section, re.M).group(1))
    (run,) = runs
    assert run.predicted == pytest.approx(single_backend_seconds(wf, Cardinality(wf), profile, "local",
                                                                 supports(engines)))
    assert f"{run.predicted:.3f}" == f"{explain_local:.3f}"
    assert run.predicted >= profile.get("local").startup > 0
    # measured is on the same footing: a fresh process's start plus this run's phases
    assert set(run.phases) == {"process start", "generate", "load program", "run"}
    assert run.measured == pytest.approx(sum(run.phases.values()))
    assert all(v >= 0 for v in run.phases.values()) and run.phases["process start"] > 0
    assert f"| local | {run.measured:.3f} | {run.predicted:.3f} |" in summary


def test_report_charts_have_log_axis_values_and_legend(small: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(small)
    code = cli.main(["compare", "q.sql", "--data-dir", "data", "--backends", "local,dask", "--report", "r.html"])
    out = capsys.readouterr().out
    assert code == 0
    html = Path("r.html").read_text()
    measured = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\| (\w+) \| ([\d.]+) \|", out, re.M)}
    assert set(measured) == {"local", "dask"}
    svgs = _svgs(html)
    assert set(svgs) == {"totals-chart", "breakdown-chart", "stages-chart"}
    totals = _texts(svgs["totals-chart"])
    assert "measured" in totals and "predicted (explain)" in totals  # the legend
    assert any("log scale" in t for t in totals)  # the axis says so
    decades = [t for t in totals if re.fullmatch(r"[\d.,]+ (s|ms|µs)", t)
               and math.log10(_seconds(t)) == pytest.approx(round(math.log10(_seconds(t))), abs=1e-6)]
    assert len(set(decades)) >= 2, totals  # log axis: powers of ten as tick labels
    values = [_seconds(t) for t in totals if re.fullmatch(r"[\d.,]+ (s|ms|µs)", t)]
    for backend, seconds in measured.items():  # each bar's value is written next to it (3 digits)
        assert any(abs(v - seconds) <= 0.006 * seconds + 0.001 for v in values), (backend, seconds, values)
        assert backend in totals
    # bars are drawn with non-zero size
    paths = [p for p in svgs["totals-chart"].iter(f"{SVG}path") if "fill: #1f78b4" in (p.get("style") or "")]
    assert len(paths) >= 2
    breakdown = _texts(svgs["breakdown-chart"])
    for phase in ("process start", "generate", "run", "start-up (predicted)", "compute (predicted)"):
        assert phase in breakdown
    # machine, versions, load; folded highlighted code
    for needle in ('id="machine"', "load average", "pandas ", "pyarrow ", "CPU"):
        assert needle in html
    assert html.count("<details") == 2 and 'class="highlight"' in html
    assert '<span class="k">def</span>' in html  # pygments token classes
    assert not re.search(r'(src|href|url)\s*[=(]\s*"?https?:', html) and "<script" not in html  # offline


def test_failed_backend_is_shown_with_its_error(small: Path) -> None:
    profile = Profile(dict(default_profiles()), source="defaults")
    wf = api.plan_workflow(small / "q.sql", data_dir=str(small / "data"))
    ok = BackendRun("local", 0.9, 0.76, 10, "def run():\n    pass\n", {}, {"process start": 0.5, "run": 0.4},
                    0.74, 0.5)
    bad = BackendRun("spark", math.nan, 12.6, 0, "", {}, {}, 12.0, 0.7,
                     error="Py4JJavaError: Java gateway process exited <before> sending its port number")
    html = render(wf, profile, [ok, bad], [], None)
    assert 'id="busy"' not in html  # load 0.5 and 0.7: not busy
    busy = BackendRun("dask", 2.0, 1.6, 10, "", {}, {"run": 2.0}, 1.6, 50.0 * (os.cpu_count() or 1))
    assert "The machine was busy: load average up to" in render(wf, profile, [ok, busy], [], None)
    assert '<tr class="failed"><td>spark</td>' in html
    assert "failed: Py4JJavaError: Java gateway process exited &lt;before&gt; sending" in html
    assert 'class="verdict bad"' in html and "1 of 2 backend(s) failed" in html
    totals = _texts(_svgs(html)["totals-chart"])
    assert any(t.startswith("failed: Py4JJavaError") for t in totals)
    assert "0.90 s" in totals and "12.6 s" in totals


def test_stages_chart_splits_each_stage_of_a_mixed_plan(small: Path) -> None:
    """A plan over two engines: one bar per stage, labelled with the plan's
    estimate, operator count and the engine's start-up."""
    from musketeer.cost_model import plan
    from tests.test_cost_model import _local_dask_profile

    import dataclasses

    wf = api.plan_workflow(small / "q.sql", data_dir=str(small / "data"))
    profile = _local_dask_profile()
    for name in profile.backends:  # a small start-up each, so the split shows
        profile.backends[name] = dataclasses.replace(profile.backends[name], startup=1e-5)
    p = plan(wf, Cardinality(wf), profile, ["local", "dask"])
    assert [s.backend for s in p.stages] == ["local", "dask"]
    run = BackendRun("local", 0.9, 0.76, 10, "", {}, {"run": 0.9}, 0.74, 0.5)
    html = render(wf, profile, [run], [], p)
    texts = _texts(_svgs(html)["stages-chart"])
    assert {"stage 0: local", "stage 1: dask"} <= set(texts)
    for stage in p.stages:
        assert f"{seconds_label(stage.estimate)}, {len(stage.ops)} ops (engine start-up 10 µs)" in texts
