"""Files a workflow writes appear together or not at all, with normal
permissions (issue 14): a `COPY ... TO` followed by a step that fails leaves
no file behind (and no temporary), on every engine and from a compiled
program run on its own; written files get 0666 less the umask, as a plain
open() would, not mkstemp's 0600."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musketeer.cli import main
from tests.linq_helpers import EVERY_BACKEND

WORKFLOW = """COPY (SELECT id, status FROM t) TO 'first.csv';
COPY (SELECT id FROM t WHERE id > 1) TO 'second.parquet';
SELECT id, CAST(status AS INTEGER) AS n FROM t;
"""


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    pq.write_table(pa.table({"id": pa.array([1, 2, 3], pa.int64()),
                             "status": pa.array(["1", "2", "shipped"])}), tmp_path / "t.parquet")
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64()), "status": pa.array(["1", "2"])}),
                   tmp_path / "ok.parquet")
    (tmp_path / "wf.sql").write_text(WORKFLOW)
    return tmp_path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@EVERY_BACKEND
def test_a_failing_step_leaves_no_output_file(workdir: Path, backend: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "wf.sql", "--table", "t=t.parquet", "--backend", backend]) == 2
    assert "'shipped'" in capsys.readouterr().err
    assert sorted(p.name for p in workdir.iterdir()) == ["ok.parquet", "t.parquet", "wf.sql"]
    assert main(["run", "wf.sql", "--table", "t=ok.parquet", "--backend", backend]) == 0
    for name in ("first.csv", "second.parquet"):
        assert (workdir / name).stat().st_mode & 0o777 == 0o666 & ~_umask(), name
    assert not [p for p in workdir.iterdir() if p.name.startswith(".")]


def test_compiled_program_is_all_or_nothing_and_respects_the_umask(workdir: Path) -> None:
    assert main(["compile", "wf.sql", "--table", "t=t.parquet", "--backend", "local", "-o", "prog.py"]) == 0
    env = {**os.environ, "PYTHONPATH": ""}
    run = subprocess.run([sys.executable, "prog.py"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2 and "cannot cast 'shipped' to int64" in run.stderr, run.stderr
    assert not (workdir / "first.csv").exists() and not (workdir / "second.parquet").exists()
    run = subprocess.run(["sh", "-c", f"umask 027 && {sys.executable} prog.py --table t=ok.parquet "
                          "--output out.csv"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    for name in ("first.csv", "second.parquet", "out.csv"):
        assert (workdir / name).stat().st_mode & 0o777 == 0o640, name
