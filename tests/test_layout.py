"""The layering rules, read from the source: imports point down only.

The repository's top-level folders install as subpackages of `musketeer`
(pyproject's package-dir). These tests parse every module's imports (also
those inside functions) and check the arrows the architecture promises:
`ir` imports nothing above it; frontends and backends import `ir`, never
each other; sibling backends share only through `backends/common`; `mpc`
takes IR and never reaches the frontends or the facade.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("ir", "frontends", "backends", "cost_model", "mpc", "musketeer")
FACADE = ("musketeer.api", "musketeer.cli", "musketeer.commands", "musketeer.dataset", "musketeer.autoplan")


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def _violations(folder: str, forbidden) -> list[str]:
    out = []
    for path in _modules(folder):
        for line, name in _imports(path):
            reason = forbidden(path, name)
            if reason:
                out.append(f"{path.relative_to(ROOT)}:{line}: imports {name} ({reason})")
    return sorted(set(out))


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_no_layer_is_imported_as_a_top_level_package():
    """`import ir` would work only from a source checkout, and would load a
    second copy of the module next to `musketeer.ir`."""
    folders = [*LAYERS, "tests", "benchmarks", "examples"]
    bad = []
    for folder in folders:
        bad += _violations(folder, lambda p, n: "use musketeer." + n.split(".")[0]
                           if n.split(".")[0] in LAYERS[:-1] else None)
    assert bad == []


def test_ir_imports_nothing_above_it():
    above = ("musketeer.frontends", "musketeer.backends", "musketeer.cost_model", "musketeer.mpc")

    def check(path: Path, name: str) -> str | None:
        if any(_under(name, a) for a in above):
            return "ir is the bottom layer"
        if _under(name, "musketeer") and not _under(name, "musketeer.ir"):
            return "ir is the bottom layer"
        if _under(name, "networkx"):
            return "ir needs no graph library"
        return None

    assert _violations("ir", check) == []


def test_frontends_and_backends_do_not_import_each_other():
    assert _violations("frontends", lambda p, n: "frontends never import backends"
                       if _under(n, "musketeer.backends") else None) == []
    assert _violations("backends", lambda p, n: "backends never import frontends"
                       if _under(n, "musketeer.frontends") else None) == []


def _engines() -> list[str]:
    return sorted(p.name for p in (ROOT / "backends").iterdir() if (p / "__init__.py").exists() and p.name != "common")


def test_sibling_backends_share_only_through_common():
    engines = _engines()

    def check(path: Path, name: str) -> str | None:
        own = path.relative_to(ROOT / "backends").parts[0]
        for other in engines:
            if other != own and _under(name, f"musketeer.backends.{other}"):
                return f"{own} reaches into sibling {other}; share through backends/common"
        return None

    assert _violations("backends", check) == []


def test_shared_backend_code_does_not_depend_on_an_engine():
    engines = _engines()
    assert _violations("backends/common", lambda p, n: "common code imports an engine"
                       if any(_under(n, f"musketeer.backends.{e}") for e in engines) else None) == []


def _folder_reaches(path: Path) -> list[tuple[int, str]]:
    """(line, folder) of every `<path> / "folder"` in the file: how code
    reads files (templates) of another package without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [(node.lineno, node.right.value) for node in ast.walk(tree)
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant) and isinstance(node.right.value, str)]


def test_backends_read_no_sibling_engine_files():
    """Templates are shared the same way as code: a backend (or
    backends/common) that builds a path into another engine's folder
    (`parent.parent / "local" / "templates"`) depends on it as much as an
    import would."""
    engines = _engines()
    bad = []
    for path in _modules("backends"):
        own = path.relative_to(ROOT / "backends").parts[0]
        for line, folder in _folder_reaches(path):
            if folder in engines and folder != own:
                bad.append(f"{path.relative_to(ROOT)}:{line}: reads files of backends/{folder}")
    assert bad == []


def test_mpc_takes_ir_not_sql_text_or_the_facade():
    def check(path: Path, name: str) -> str | None:
        if _under(name, "musketeer.frontends"):
            return "mpc takes IR; the facade parses"
        if any(_under(name, f) for f in FACADE):
            return "mpc must not call back into the facade"
        return None

    assert _violations("mpc", check) == []


def test_every_subpackage_is_listed_for_the_wheel():
    """pyproject lists packages explicitly (package-dir maps folders to
    musketeer.*); a new folder with __init__.py missing from the list would
    work in an editable install and be absent from the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    expected = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            expected.add(".".join((package, *rel)))
    assert expected - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - expected == set(), "these listed packages have no folder"


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_layers_import_under_the_musketeer_name(layer):
    module = __import__(f"musketeer.{layer}", fromlist=["_"])
    assert Path(module.__file__).resolve().parent == ROOT / layer
