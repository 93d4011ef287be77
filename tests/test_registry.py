"""The backend registry and the capabilities derived from each generator.

One list of backends (backends/registry.py) feeds the CLI, the facade, the
cost model and `--backend auto`; capabilities come from what each
generator implements, and docs/capabilities.md is their rendering.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from musketeer import api, cli
from musketeer.backends import registry
from musketeer.backends.capabilities import Capabilities, derive, missing, missing_in
from musketeer.cost_model import Cardinality, Profile, plan
from musketeer.cost_model.costs import default_profiles
from musketeer.ir import UnsupportedError, Workflow
from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir.types import INT64, STRING

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "revenue_by_region.sql"
DATA = ROOT / "examples" / "data"


def test_builtins_are_listed_in_preference_order() -> None:
    names = registry.names()
    assert [n for n in names if n in registry.BUILTINS] == ["local", "duckdb", "dask", "spark", "ciel"]
    prefs = [registry.descriptor(n).preference for n in names]
    assert prefs == sorted(prefs)
    assert api.backend_names() == names and api.BACKENDS == tuple(names)


def test_listing_backends_imports_no_engine_library() -> None:
    """Descriptors and their capabilities load no engine library (not even
    pandas or pyarrow), nor does the CLI's parser: it lists every backend
    and its flags, and auto prices them all before loading one."""
    code = ("import sys\n"
            "from musketeer.backends import registry\n"
            "for d in registry.descriptors():\n"
            "    d.capabilities; d.default_profile; d.cluster_options\n"
            "heavy = [m for m in ('dask', 'distributed', 'pyspark', 'duckdb', 'pandas', 'pyarrow') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "from musketeer import cli\n"
            "cli.build_parser()\n"
            "heavy = [m for m in ('dask', 'distributed', 'pyspark', 'duckdb') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_default_profiles_come_from_the_descriptors() -> None:
    profiles = default_profiles()
    assert list(profiles) == registry.names()
    for name in registry.names():
        declared = registry.descriptor(name).default_profile
        assert profiles[name].startup == declared["startup"]
        assert profiles[name].rates == declared["rates"]
    assert profiles["local"].memory_bytes is not None and profiles["spark"].memory_bytes is None


def test_cluster_flags_and_backend_help_come_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["run", "w.sql", "--spark-master", "spark://h:7077", "--ciel-master", "h:1"])
    assert cli.run_options(args) == {"spark_master": "spark://h:7077", "ciel_master": "h:1"}
    flags = {opt.flag for _, opt in registry.cluster_options()}
    assert flags == {"--spark-master", "--dask-scheduler", "--ciel-master", "--duckdb-threads",
                     "--duckdb-memory-limit"}
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in registry.names())
    assert all(flag in help_text for flag in flags)


def test_unknown_backend_is_one_line_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", str(EXAMPLE), "--data-dir", str(DATA), "--backend", "lokal"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "unknown backend 'lokal'" in err and "'local'" in err and "ciel" in err


def test_a_broken_plugin_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> object:
        raise ImportError("no engine here")

    entries = {**registry.entries(), "broken": registry.Entry("broken", "broken-dist 0.1", boom)}
    monkeypatch.setattr(registry, "entries", lambda: entries)
    registry._load.cache_clear()
    try:
        assert "broken" not in registry.names() and "local" in registry.names()
        ok, reason = registry.available("broken")
        assert not ok and "broken-dist 0.1 failed to load: ImportError: no engine here" in reason
        with pytest.raises(Exception, match="failed to load"):
            api.get_backend("broken")
    finally:
        registry._load.cache_clear()


# --- capabilities ---------------------------------------------------------------

class _Compiler:
    """A stand-in expression compiler: columns, literals and functions, but not upper()."""

    def _col(self) -> None: ...
    def _lit(self) -> None: ...
    def _func(self) -> None: ...


class _Generator:
    def op_Scan(self) -> None: ...
    def op_Filter(self) -> None: ...
    def op_Aggregate(self) -> None: ...


def _compile(schema: object, e: E.Expr) -> str:
    if isinstance(e, E.Func) and e.name == "upper":
        raise UnsupportedError("function upper()")
    return "code"


def test_capabilities_are_derived_from_the_generator() -> None:
    caps = derive(_Generator, _Compiler, _compile)
    assert caps.operators == {"Scan", "Filter", "Aggregate", "Sink"}
    assert caps.expressions == {"Col", "Lit", "Func"}
    assert "lower" in caps.functions and "upper" not in caps.functions
    assert caps.aggregates == {"sum", "count", "count_star", "avg", "min", "max"}
    assert caps.join_kinds == frozenset() and caps.extract_parts == frozenset()  # no op_Join, no _extract


def _people() -> O.Scan:
    return O.Scan("people", "people.parquet", "parquet",
                  (O.ScanColumn("name", "name", STRING), O.ScanColumn("age", "age", INT64)))


def _upper_workflow() -> Workflow:
    proj = O.Project(_people(), (("shout", E.Func("upper", (E.Col("name"),))), ("age", E.Col("age"))))
    return Workflow((O.Sink(O.Filter(proj, E.Compare(">", E.Col("age"), E.Lit(1, INT64))), "result"),))


def test_missing_names_what_an_operator_needs() -> None:
    caps = registry.descriptor("local").capabilities.without(functions={"upper"}, join_kinds={"full"})
    wf = _upper_workflow()
    assert missing_in(caps, wf) == ["function upper"]
    other = O.Scan("pets", "pets.parquet", "parquet", (O.ScanColumn("owner_age", "owner_age", INT64),))
    join = O.Join(_people(), other, "full", ("age",), ("owner_age",))
    assert missing(caps, join) == ["join kind full"]
    assert missing(caps, join.replace(kind="left")) == []


def test_auto_never_plans_a_feature_on_a_backend_without_it() -> None:
    local = registry.descriptor("local")
    wf = _upper_workflow()
    caps = {"local": local.capabilities.without(functions={"upper"}), "other": local.capabilities}
    cheap = Profile()
    p = plan(wf, Cardinality(wf), cheap, ["local", "other"], lambda b, op: not missing(caps[b], op))
    upper = next(op for op in wf.ops() if isinstance(op, O.Project))
    assert p.assignment[id(upper)] == "other"
    assert p.assignment[id(next(op for op in wf.ops() if isinstance(op, O.Scan)))] in ("local", "other")


def test_choose_plan_routes_around_a_loaded_engine_that_lacks_a_feature(monkeypatch: pytest.MonkeyPatch) -> None:
    """Engines are loaded only when a plan picks them; once loaded, what
    they lack is never planned on them (here local lacks upper())."""
    from musketeer import autoplan

    ok, reason = registry.available("dask")
    if not ok:
        pytest.skip(f"dask unavailable: {reason}")
    local = registry.descriptor("local")
    monkeypatch.setattr(local, "capabilities", local.capabilities.without(functions={"upper"}))
    monkeypatch.setattr(autoplan, "CANDIDATES", ("local", "dask"))
    wf = _upper_workflow()
    p, engines, _ = autoplan.choose_plan(wf, Profile())
    upper = next(op for op in wf.ops() if isinstance(op, O.Project))
    assert p.assignment[id(upper)] == "dask" and "dask" in engines
    for op in wf.ops():
        if id(op) in p.assignment:
            assert not missing(engines[p.assignment[id(op)]].capabilities, op)


def test_a_named_backend_refuses_what_it_lacks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local = registry.descriptor("local")
    monkeypatch.setattr(local, "capabilities", local.capabilities.without(functions={"upper"}))
    sql = tmp_path / "q.sql"
    sql.write_text("SELECT UPPER(region_name) AS n FROM regions\n")
    with pytest.raises(UnsupportedError, match=r"function upper in the local backend; backends that have it: duckdb, dask"):
        api.execute(sql, backend="local", data_dir=str(DATA))


def test_everything_is_the_whole_ir() -> None:
    caps = Capabilities.everything()
    assert set(O.OPERATORS) <= caps.operators and set(E.FUNCTIONS) <= caps.functions


def test_docs_capabilities_md_is_current() -> None:
    """CI's stale check: regenerate with `musketeer capabilities --write docs/capabilities.md`."""
    assert cli.main(["capabilities", "--check", str(ROOT / "docs" / "capabilities.md")]) == 0


def test_capabilities_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "capabilities.md"
    stale.write_text("# old\n")
    assert cli.main(["capabilities", "--check", str(stale)]) == 1
    assert cli.main(["capabilities", "--write", str(stale)]) == 0
    assert cli.main(["capabilities", "--check", str(stale)]) == 0


# --- "auto" means the cost model's choice everywhere -----------------------------

def _dask_is_cheapest(tmp_path: Path) -> Path:
    """A profile in which only dask is cheap: local, spark and ciel start slowly."""
    import json

    slow = {"startup": 1000.0}
    profile = {"version": 1, "backends": {"local": slow, "spark": slow, "ciel": slow, "dask": {"startup": 0.1}}}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    return path


def test_auto_is_the_cost_models_choice_for_run_compile_and_dataset(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ok, reason = registry.available("dask")
    if not ok:
        pytest.skip(f"dask unavailable: {reason}")
    profile = _dask_is_cheapest(tmp_path)
    monkeypatch.setenv("MUSKETEER_PROFILE", str(profile))
    compiled = api.compile_workflow(EXAMPLE, data_dir=str(DATA))
    assert compiled.backend == "dask" and "dask" in compiled.text
    run = api.execute(EXAMPLE, data_dir=str(DATA))
    assert run.result.metrics["backend"] == "dask"
    from musketeer import read

    regions = read(str(DATA / "regions.csv"))
    assert regions.compile().backend == "dask"
    assert regions.compile("local").backend == "local"


def test_compiling_a_mixed_plan_to_one_file_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from musketeer import autoplan
    from musketeer.cost_model.planner import Plan, Stage

    def two_stages(workflow, profile, options=None, names=None):
        return Plan([Stage("local", []), Stage("dask", [])], 1.0, {}), {}, None

    monkeypatch.setattr(autoplan, "choose_plan", two_stages)
    with pytest.raises(Exception, match=r"several engines \(local -> dask\).*-o DIR"):
        api.compile_workflow(EXAMPLE, data_dir=str(DATA))


def test_cost_model_imports_no_engine_and_no_glue() -> None:
    """The cost model reads the backend contract and registry, never an
    engine's package (it is handed engines) nor the facade."""
    import ast

    engines = set(registry.BUILTINS)
    bad = []
    for path in sorted((ROOT / "cost_model").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                parts = name.split(".")
                if parts[:2] == ["musketeer", "backends"] and len(parts) > 2 and parts[2] in engines:
                    bad.append(f"{path.name}: {name}")
                if parts[0] == "musketeer" and len(parts) > 1 and parts[1] not in (
                        "ir", "backends", "cost_model"):
                    bad.append(f"{path.name}: {name}")
    assert bad == []
