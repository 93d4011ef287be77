"""mypy over the layers others build on: musketeer.ir, musketeer.backends.common,
the backend contract and registry, and musketeer.cost_model.

The repository's folders install as subpackages of `musketeer` (package-dir),
which mypy cannot follow through an editable install, so the test lays the
source out as installed (a tree of symlinks in a temporary directory) and
checks the two packages there with pyproject's [tool.mypy] settings. This is
how CI runs the type checker (`make test`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("ir", "frontends", "backends", "cost_model", "mpc")
#: Packages (-p) and modules (-m) checked: the IR, what engines share, the
#: backend contract and registry, and the cost model.
CHECKED = ("musketeer.ir", "musketeer.backends.common", "musketeer.cost_model")
MODULES = ("musketeer.backends.base", "musketeer.backends.registry", "musketeer.backends.capabilities")


def _installed_layout(dest: Path) -> Path:
    package = dest / "musketeer"
    package.mkdir(parents=True)
    for entry in (ROOT / "musketeer").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for layer in LAYERS:
        (package / layer).symlink_to(ROOT / layer)
    return dest


def test_mypy_finds_no_errors(tmp_path: Path) -> None:
    root = _installed_layout(tmp_path / "src")
    args = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(tmp_path / "cache")]
    for package in CHECKED:
        args += ["-p", package]
    for module in MODULES:
        args += ["-m", module]
    done = subprocess.run(args, cwd=root, env={**os.environ, "MYPYPATH": str(root)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout
