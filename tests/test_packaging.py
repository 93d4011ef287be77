"""What users install: the wheel, and a third-party backend plugged in.

- The wheel (built from a copy of the source tree, as a clean clone has it)
  installs one top-level package, `musketeer`, with every template and
  README; in a fresh venv the demo runs and gives DuckDB's answer (slow).
- A tiny out-of-tree backend (tests/plugins/toy_backend, its own
  pyproject declaring the `musketeer.backends` entry point) is installed
  with pip into a separate directory; `musketeer` run with that directory on
  PYTHONPATH lists it, runs workflows on it (`--backend toy` and its own
  cluster flag), and `--backend auto` picks it (its profile is nearly free).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.csv as pacsv
import pytest

from tests import tpch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "revenue_by_region.sql"
DATA = ROOT / "examples" / "data"
PLUGIN = Path(__file__).resolve().parent / "plugins" / "toy_backend"
PIP_TIMEOUT = 600


def _source_copy(dest: Path) -> Path:
    """The files a clean clone would have (tracked plus new, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    src = _source_copy(root / "src")
    out = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                   check=True, timeout=PIP_TIMEOUT)
    (found,) = out.glob("musketeer-*.whl")
    return found


def test_the_wheel_installs_only_musketeer(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"musketeer"}
    # every template and README in the source lands under its package
    folders = {"ir": "ir", "frontends": "frontends", "backends": "backends", "cost_model": "cost_model",
               "mpc": "mpc", "musketeer": "musketeer"}
    expected = set()
    for folder, _ in folders.items():
        for path in (ROOT / folder).rglob("*"):
            if path.suffix == ".j2" or (path.name == "README.md" and (path.parent / "__init__.py").exists()):
                rel = path.relative_to(ROOT / folder).as_posix()
                expected.add(f"musketeer/{rel}" if folder == "musketeer" else f"musketeer/{folder}/{rel}")
    assert expected and expected <= set(names), sorted(expected - set(names))
    assert any(n.endswith("backends/local/__init__.py") for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as z:
        assert "musketeer = musketeer.cli:main" in z.read(entry_points).decode()


def _demo_oracle() -> pd.DataFrame:
    con = duckdb.connect()
    for table in ("orders", "customers", "regions"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_csv_auto('{DATA / (table + '.csv')}')")
    return tpch.arrow_to_pandas(con.execute(EXAMPLE.read_text()).to_arrow_table())


def _check_demo_csv(path: Path) -> None:
    ours = tpch.arrow_to_pandas(pacsv.read_csv(path))
    tpch.assert_same_rows(ours, _demo_oracle(), None)


@pytest.mark.slow
def test_the_demo_runs_from_a_fresh_venv_with_the_wheel(wheel: Path, tmp_path: Path) -> None:
    """The wheel in a new venv (dependencies from this interpreter's
    site-packages, added by a .pth, so nothing is downloaded): only
    `musketeer` is added to site-packages, and the demo gives DuckDB's answer."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    before = {p.name for p in site.iterdir()}
    deps = {str(Path(m.__file__).resolve().parents[1]) for m in (pd, duckdb)}
    (site / "zz_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=PIP_TIMEOUT)
    added = {p.name for p in site.iterdir()} - before - {"zz_deps.pth", "__pycache__"}
    assert {a for a in added if not a.endswith(".dist-info")} == {"musketeer"}, added
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import musketeer; print(musketeer.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(site)
    demo = subprocess.run([str(env_dir / "bin" / "musketeer"), "run", str(EXAMPLE), "--data-dir", str(DATA),
                           "--output", "out.csv"], cwd=work, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr
    _check_demo_csv(work / "out.csv")


# --- a third-party backend through the entry point ------------------------------------

@pytest.fixture(scope="module")
def toy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy plugin installed with pip into its own directory."""
    root = tmp_path_factory.mktemp("toy")
    src = root / "src"
    shutil.copytree(PLUGIN, src)  # pip may write build files next to the sources
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(src)],
                   check=True, timeout=PIP_TIMEOUT)
    assert (target / "toy_backend" / "__init__.py").exists()
    return target


def _musketeer(toy_path: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_path), os.environ.get("PYTHONPATH", "")])}
    env.pop("MUSKETEER_PROFILE", None)
    env["XDG_CONFIG_HOME"] = str(cwd)  # no calibrated profile: the declared defaults
    return subprocess.run([sys.executable, "-m", "musketeer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_plugin_backend_runs_workflows_and_auto_can_choose_it(toy_path: Path, tmp_path: Path) -> None:
    listed = _musketeer(toy_path, "run", "--help", cwd=tmp_path)
    assert listed.returncode == 0 and "toy" in listed.stdout and "--toy-workdir" in listed.stdout

    named = _musketeer(toy_path, "run", str(EXAMPLE), "--data-dir", str(DATA), "--backend", "toy",
                       "--toy-workdir", "kept", "--output", "named.csv", "--metrics", cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert "backend: toy" in named.stderr
    assert (tmp_path / "kept" / "program.py").exists()  # its cluster option reached it
    _check_demo_csv(tmp_path / "named.csv")

    auto = _musketeer(toy_path, "run", str(EXAMPLE), "--data-dir", str(DATA), "--output", "auto.csv",
                      "--metrics", cwd=tmp_path)
    assert auto.returncode == 0, auto.stderr
    assert "plan: toy" in auto.stderr
    _check_demo_csv(tmp_path / "auto.csv")

    matrix = _musketeer(toy_path, "capabilities", cwd=tmp_path)
    assert matrix.returncode == 0
    header = next(line for line in matrix.stdout.splitlines() if line.startswith("| |"))
    assert header.split("|")[-2].strip() == "toy"
    udf = next(line for line in matrix.stdout.splitlines() if line.startswith("| `UDF`"))
    assert udf.split("|")[-2].strip() == "no"  # what the toy lacks is what the matrix says


def test_auto_routes_around_what_a_plugin_lacks(toy_path: Path, tmp_path: Path) -> None:
    """The toy lacks UDF: a workflow with one runs the UDF elsewhere (or all
    of it elsewhere), never on the toy; naming the toy is refused in one line."""
    wf = tmp_path / "udf_flow.py"
    wf.write_text(
        "import pandas as pd\n"
        "from musketeer import read\n"
        "def double(frame: pd.DataFrame) -> pd.DataFrame:\n"
        "    return pd.DataFrame({'n': frame['n'] * 2})\n\n"
        f"regions = read({str(DATA / 'regions.csv')!r})\n"
        "counted = regions.agg(n=regions.region_code.count())\n"
        "workflow = counted.apply(double, schema={'n': 'int64'}, mode='partition')\n")
    auto = _musketeer(toy_path, "run", str(wf), "--metrics", cwd=tmp_path)
    assert auto.returncode == 0, auto.stderr
    plan = next(line for line in auto.stderr.splitlines() if line.strip().startswith("plan:"))
    assert plan.split()[-1] != "toy", plan  # the UDF's stage is not the toy's
    regions = pacsv.read_csv(DATA / "regions.csv").column("region_code")
    assert str(2 * (len(regions) - regions.null_count)) in auto.stdout.split()
    named = _musketeer(toy_path, "run", str(wf), "--backend", "toy", cwd=tmp_path)
    assert named.returncode == 2 and named.stderr.count("\n") <= 3
    assert "operator UDF in the toy backend" in named.stderr
