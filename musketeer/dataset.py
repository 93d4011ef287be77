"""The Python API's glue: a Dataset that can run, and `.py` workflow files.

`frontends.linq.Dataset` only builds IR; this subclass adds what needs the
rest of Musketeer (the passes, a backend, file I/O):

    from musketeer import read, col
    edges = read("data/edges.csv")
    print(edges.group_by("src").agg(n=count()).collect())

`read(path)` and `table(name)` bind files the way the CLI does. While a
`.py` workflow runs under `musketeer run wf.py --data-dir DIR`, they use
that command's catalog (so `--table` and `--data-dir` work as for SQL, and
relative paths resolve next to the workflow file); outside it, `read`
resolves relative paths next to the calling file, then the cwd.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import types
import warnings
from typing import Any, Iterator

import pandas as pd

from musketeer.backends.base import Program, RunResult
from musketeer.frontends.linq import Dataset as _LinqDataset
from musketeer.frontends.linq import from_table
from musketeer.frontends.linq.errors import code_loc, mark_internal, user_location
from musketeer.ir import Catalog, IRError, MusketeerError, SourceLoc, Workflow
from musketeer.catalog import FileCatalog

mark_internal(os.path.dirname(os.path.abspath(__file__)))

#: The catalog of the `.py` workflow being loaded, if any.
_ACTIVE: contextvars.ContextVar[Catalog | None] = contextvars.ContextVar("musketeer_catalog", default=None)


class WorkflowFileError(MusketeerError):
    """A `.py` workflow file that fails while it runs (a Python exception in
    the user's code), or that defines no `workflow`."""


class Result(RunResult):
    """What `Dataset.run()` returns: a RunResult that shows itself as
    tables (with NULLs as NULL, long results cut with a note) and its
    metrics in a notebook."""

    def _repr_html_(self) -> str:
        from musketeer.render import result_html

        return result_html(self.outputs, self.metrics)


class Dataset(_LinqDataset):
    """A lazy dataset that can also run: see `frontends.linq.Dataset` for
    building, and `collect`, `run`, `explain`, `compile` here."""

    def _repr_html_(self) -> str:
        """A notebook shows the columns and the plan; nothing runs (a dataset
        is lazy: `.collect()` runs it)."""
        from musketeer.render import dataset_html

        return dataset_html(self.schema, self.to_workflow().to_text(with_schema=False))

    def workflow(self, name: str = "workflow") -> Workflow:
        return self.to_workflow(name)

    def run(self, backend: str = "auto", *, output: str | None = None,
            options: dict[str, Any] | None = None, name: str = "workflow") -> RunResult:
        """Optimize, compile and run on `backend`. The RunResult has
        `outputs["result"]` and `metrics` (seconds; `iterations`, and per
        loop `loops[label] = {iterations, converged}`; `warnings`). Loops
        that stop at max_iter before their rule holds also warn here."""
        from musketeer.api import execute_workflow

        result = execute_workflow(self.to_workflow(name), backend=backend, output=output, options=options).result
        for text in result.metrics.get("warnings", ()):
            warnings.warn(text, RuntimeWarning, stacklevel=2)
        return Result(result.outputs, result.metrics)

    def collect(self, backend: str = "auto", *, options: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run and return the result rows as a pandas DataFrame."""
        from musketeer.api import execute_workflow

        result = execute_workflow(self.to_workflow(), backend=backend, options=options).result
        for text in result.metrics.get("warnings", ()):
            warnings.warn(text, RuntimeWarning, stacklevel=2)
        return result.outputs["result"]

    to_pandas = collect

    def explain(self, passes: bool = True) -> str:
        """The IR as `musketeer explain` prints it (after the passes unless passes=False)."""
        from musketeer.api import optimize_workflow

        wf = self.to_workflow()
        return (optimize_workflow(wf) if passes else wf).to_text()

    def compile(self, backend: str = "auto", name: str = "workflow") -> Program:
        """The backend's standalone program (`.text` is its source); `auto`
        is the cost model's choice, as for run()."""
        from musketeer.api import generate, optimize_workflow

        return generate(optimize_workflow(self.to_workflow(name)), backend)


# --- reading data ---------------------------------------------------------------

def _caller_dir() -> str:
    loc = user_location(2)
    if loc is None or loc.file.startswith("<"):
        return os.getcwd()
    return os.path.dirname(os.path.abspath(loc.file))


def read(source: str | os.PathLike[str] | Any, *, name: str | None = None) -> Dataset:
    """A dataset over a parquet or CSV file (format by extension), or over
    rows already in memory: a pandas DataFrame, a pyarrow Table or
    RecordBatch, or a polars DataFrame.

    A file's schema is read now (parquet footer, or CSV type inference over
    the first MiB); its rows when the workflow runs. A frame is written
    once to a Parquet file in a temporary directory of this process (see
    `frames.py`), which every engine and a compiled program can read;
    `name` names its table (default `frame_<hash>`).
    """
    try:
        if not isinstance(source, (str, os.PathLike)):
            from musketeer.frames import frame_table

            return from_table(frame_table(source, name), Dataset)
        path = os.fspath(source)
        catalog = _ACTIVE.get() or FileCatalog(base_dir=_caller_dir())
        return from_table(catalog.from_path(path), Dataset)
    except MusketeerError as err:
        err.loc = err.loc or user_location(2)
        raise


def table(name: str, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """The table `name` of the data directory: `musketeer run`'s --data-dir
    / --table, or `data_dir` when given (DIR/name.parquet or DIR/name.csv)."""
    catalog = _ACTIVE.get() if data_dir is None else FileCatalog(os.fspath(data_dir))
    try:
        if catalog is None:
            raise IRError(f"table({name!r}) needs a data directory: pass data_dir=..., or run the workflow "
                          "with `musketeer run FILE.py --data-dir DIR`")
        return from_table(catalog.get(name), Dataset)
    except MusketeerError as err:
        err.loc = err.loc or user_location(2)
        raise


@contextlib.contextmanager
def catalog_scope(catalog: Catalog) -> Iterator[None]:
    """Make read()/table() bind through `catalog` (as `musketeer run` does)."""
    token = _ACTIVE.set(catalog)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


# --- .py workflow files ---------------------------------------------------------

def _module_name(path: str) -> str:
    """The module name a workflow file runs under: its stem, so functions it
    passes to apply() are importable as stem:function (by the in-process run,
    and by a compiled program run next to the file), unless that name is
    taken by another module."""
    stem = os.path.splitext(os.path.basename(path))[0]
    existing = sys.modules.get(stem)
    same_file = existing is not None and \
        os.path.abspath(getattr(existing, "__file__", "") or "") == os.path.abspath(path)
    if stem.isidentifier() and (existing is None or same_file):
        return stem
    safe = "".join(ch if ch.isalnum() else "_" for ch in stem)
    return f"musketeer_workflow_{safe}"


def _error_loc(exc: BaseException, path: str) -> SourceLoc | None:
    """The innermost traceback entry inside the workflow file."""
    target = os.path.abspath(path)
    loc = None
    tb = exc.__traceback__
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == target:
            loc = code_loc(tb.tb_frame.f_code, tb.tb_lasti, tb.tb_lineno, path)
        tb = tb.tb_next
    return loc


def load_python_workflow(path: str, text: str, catalog: Catalog) -> Workflow:
    """Run a `.py` workflow file and return the IR of its `workflow`."""
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        code = compile(text, path, "exec")
    except SyntaxError as e:
        raise WorkflowFileError(f"syntax error: {e.msg}", SourceLoc(path, e.lineno or 1, e.offset or 1)) from None
    name = _module_name(path)
    module = types.ModuleType(name)
    module.__file__ = os.path.abspath(path)
    previous = sys.modules.get(name)
    sys.modules[name] = module  # apply() checks that functions are importable while the file runs
    try:
        with catalog_scope(catalog):
            exec(code, module.__dict__)  # noqa: S102 - the user's own workflow file
    except MusketeerError as err:
        _restore(name, previous)
        err.loc = err.loc or _error_loc(err, path)
        raise
    except Exception as exc:  # noqa: BLE001 - a bug in the user's file is a user error
        _restore(name, previous)
        raise WorkflowFileError(f"{type(exc).__name__}: {exc}", _error_loc(exc, path)) from exc
    value = module.__dict__.get("workflow")
    if isinstance(value, _LinqDataset):
        return value.to_workflow(stem)
    if isinstance(value, Workflow):
        from musketeer.api import rebind_scans

        return rebind_scans(value, catalog)
    found = "defines none" if value is None else f"its `workflow` is a {type(value).__name__}"
    raise WorkflowFileError(f"{path} must define a module-level `workflow` (a musketeer Dataset or an "
                            f"ir.Workflow); {found}")


def _restore(name: str, previous: types.ModuleType | None) -> None:
    """Undo the sys.modules entry of a workflow file that failed."""
    if previous is None:
        sys.modules.pop(name, None)
    else:
        sys.modules[name] = previous
