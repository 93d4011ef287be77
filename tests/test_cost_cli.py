"""explain's cost section (golden, fixed profile), --svg,
compare's report, calibrate's profile, compile/run with --backend auto."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from musketeer.backends.local import BACKEND
from musketeer.cost_model import Profile, load_profile
from musketeer.cost_model.costs import default_profiles, save_profile
from musketeer import api, cli
from musketeer.calibrate import calibrate
from musketeer.costreport import cost_section

GOLDEN = Path(__file__).parent / "golden" / "explain_costs.txt"
GOLDEN_MIXED = Path(__file__).parent / "golden" / "explain_costs_mixed.txt"

def _fixed_profile() -> Profile:
    """Numbers written out here, not the shipped defaults (which change
    when someone re-calibrates), so the golden text only changes when the
    explain format or the cost arithmetic does."""
    rates = {"scan": 3e-8, "filter": 2e-8, "project": 3e-8, "join": 2.5e-7, "aggregate": 1.5e-7, "sort": 4e-7,
             "limit": 7.5e-9, "setop": 1.5e-7, "udf": 2e-6, "sink": 1e-8}
    fixed = {"local": (0.02, 1.0, 8e9), "dask": (0.5, 0.8, 8e9), "spark": (10.0, 0.3, None)}
    backends = {name: dataclasses.replace(default_profiles()["local"], startup=startup, op_overhead=0.0,
                                          rates={k: v * scale for k, v in rates.items()}, memory_bytes=mem)
                for name, (startup, scale, mem) in fixed.items()}
    return Profile(backends, "test profile")


def test_explain_cost_section_golden(small: Path) -> None:
    wf = api.plan_workflow(small / "q.sql", data_dir=str(small / "data"))
    text, chosen = cost_section(wf, _fixed_profile(), ["local", "dask", "spark"])
    assert text == GOLDEN.read_text()
    assert chosen.backends == ["local"]


def test_explain_mixed_plan_golden_and_dot_colours(small: Path) -> None:
    """A plan that mixes engines: per-backend estimates, then one line per
    stage with its estimate, what it reads and writes; the DOT picture has
    one cluster per stage and each backend's fill colour."""
    from musketeer.costreport import COLOURS, plan_dot
    from tests.test_cost_model import _local_dask_profile

    wf = api.plan_workflow(small / "q.sql", data_dir=str(small / "data"))
    prof = _local_dask_profile()
    prof.source = "test profile"
    text, chosen = cost_section(wf, prof, ["local", "dask"])
    assert text == GOLDEN_MIXED.read_text()
    assert chosen.backends == ["local", "dask"]
    dot = plan_dot(wf, chosen)
    assert dot.count("subgraph cluster_") == len(chosen.stages) == 2
    assert f'fillcolor="{COLOURS["local"]}"' in dot and f'fillcolor="{COLOURS["dask"]}"' in dot


def test_explain_cli_shows_costs_and_svg(small: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(small)
    code = cli.main(["explain", "q.sql", "--data-dir", "data", "--dot", "p.dot"])
    out = capsys.readouterr().out
    assert code == 0 and "-- cost estimates" in out and "plan: " in out
    assert "fillcolor" in Path("p.dot").read_text()
    # with or without Graphviz's dot (tests/test_plan_picture.py covers both layouts)
    code = cli.main(["explain", "q.sql", "--data-dir", "data", "--svg", "p.svg"])
    assert code == 0 and "<svg" in Path("p.svg").read_text()


def test_compare_report_sections(small: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(small)
    code = cli.main(["compare", "q.sql", "--data-dir", "data", "--backends", "local,nosuch", "--report", "r.html"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "| local |" in cap.out and "agree" in cap.out
    assert "| backend | measured s | predicted s | rows |" in cap.out  # the Markdown summary
    report = Path("r.html").read_text()
    for section in ('id="times"', "predicted", "<svg", 'id="plan"', 'id="code"', '<span class="nf">run</span>'):
        assert section in report


def test_compare_fails_loudly_when_results_differ(small: Path, capsys, monkeypatch) -> None:
    from musketeer.backends.base import RunResult

    class Wrong:
        name = "dask"
        capabilities = BACKEND.capabilities

        def available(self, options=None):
            return True, ""

        def generate(self, wf):
            return BACKEND.generate(wf)

        def run(self, program, options):
            r = BACKEND.run(program, options)
            return RunResult({k: v.head(1) for k, v in r.outputs.items()}, r.metrics)

    real = api.get_backend
    monkeypatch.setattr(api, "get_backend", lambda name="auto", options=None: Wrong() if name == "dask" else real(name, options))
    monkeypatch.chdir(small)
    code = cli.main(["compare", "q.sql", "--data-dir", "data", "--backends", "local,dask"])
    err = capsys.readouterr().err
    assert code == 1 and "backend dask disagrees" in err


def test_calibrate_writes_valid_profile(tmp_path: Path, caplog) -> None:
    path = tmp_path / "profile.json"
    caplog.set_level("DEBUG", logger="musketeer.progress")
    calibrate({"local": BACKEND}, sizes=[2000, 8000], path=path, stream=open(tmp_path / "log", "w"))
    data = json.loads(path.read_text())
    assert set(data["backends"]) >= {"local", "spark"}
    prof = load_profile(path)
    assert prof.get("local").rates["join"] > 0 and prof.get("local").startup >= 0
    assert (tmp_path / "log").read_text() == ""  # not a terminal: no progress bars
    steps = caplog.text  # each step is logged (shown with -v)
    assert "local join" in steps
    assert "local loop x1/x5 2,000 rows" in steps
    assert "local loop x1/x5 8,000 rows" in steps
    assert prof.get("local").loop_stage_overhead >= 0 and prof.get("local").loop_row >= 0


def test_calibrate_loops_only_keeps_rates(tmp_path: Path, capsys, caplog) -> None:
    """--loops-only re-measures the loop costs against the profile's rates
    and leaves everything else as it was."""
    path = tmp_path / "p.json"
    before = Profile()
    before.backends["local"] = dataclasses.replace(before.backends["local"], loop_stage_overhead=123.0,
                                                   loop_row=7.0)
    save_profile(before, path)
    caplog.set_level("DEBUG", logger="musketeer.progress")
    assert cli.main(["calibrate", "--backends", "local", "--sizes", "1000,3000", "--loops-only",
                     "--profile", str(path)]) == 0
    assert "local loop x1/x5 3,000 rows" in caplog.text and "local join" not in caplog.text
    after = load_profile(path).get("local")
    assert after.rates == before.backends["local"].rates and after.startup == before.backends["local"].startup
    assert after.loop_stage_overhead < 1.0 and after.loop_row < 1.0  # measured, not the planted values


def test_calibrate_cli_logs_progress_and_writes_profile(tmp_path: Path, capsys, caplog) -> None:
    """Not on a terminal: no progress bars (there were 19 per backend), one
    line saying what was written; the steps are logged (shown with -v)."""
    path = tmp_path / "p.json"
    caplog.set_level("DEBUG", logger="musketeer.progress")
    assert cli.main(["calibrate", "--backends", "local", "--sizes", "300,600", "--profile", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [f"musketeer: wrote profile for local to {path}"]
    assert "local startup (fresh process)" in caplog.text and "local join 600 rows" in caplog.text
    local = load_profile(path).get("local")
    assert local.startup > 0 and local.rates["scan"] > 0 and local.op_overhead >= 0


def test_run_auto_cli_matches_local(small: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(small)
    assert cli.main(["run", "q.sql", "--data-dir", "data", "--backend", "local"]) == 0
    expected = capsys.readouterr().out
    assert cli.main(["run", "q.sql", "--data-dir", "data"]) == 0
    assert capsys.readouterr().out == expected


def test_run_auto_metrics_per_stage(small: Path, capsys, monkeypatch) -> None:
    """`run --backend auto --metrics` on a plan forced to mix local and dask
    shows each stage's backend, estimated vs actual seconds and estimated vs
    actual rows (stage 1 was planned after stage 0 ran, over its real file)."""
    import re

    from musketeer.cost_model.costs import save_profile
    from tests.test_cost_model import _local_dask_profile

    monkeypatch.chdir(small)
    save_profile(_local_dask_profile(), small / "profile.json")
    assert cli.main(["run", "q.sql", "--data-dir", "data", "--backend", "local"]) == 0
    expected = capsys.readouterr().out
    assert cli.main(["run", "q.sql", "--data-dir", "data", "--profile", "profile.json", "--metrics"]) == 0
    out, err = capsys.readouterr()
    assert out == expected
    lines = {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1].strip() for ln in err.splitlines() if ":" in ln}
    assert lines["plan"] == "local -> dask" and lines["replanned_after_each_stage"] == "True"
    first, second = lines["stage 0"], lines["stage 1"]
    assert first.startswith("local: estimated ") and second.startswith("dask: estimated ")
    for text in (first, second):
        assert re.search(r"estimated [\d.]+ s \(of which start-up [\d.]+ s[^)]*\), actual run [\d.]+ s; "
                         r"rows estimated -> actual: ", text), text
    # stage 0 filters f (v < 500 of 0..999): 500 real rows; the estimate comes from column statistics
    est, real = re.search(r"stage_0_\d+ ([\d,]+) -> ([\d,]+)", first).groups()
    assert int(real.replace(",", "")) == 500 and 250 <= int(est.replace(",", "")) <= 1000
    assert re.search(r"result [\d,]+ -> 10$", second)
