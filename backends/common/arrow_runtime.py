"""The pandas + pyarrow runtime library that local, dask and ciel programs inline.

Every partition these engines compute is a pandas DataFrame of pyarrow-backed
(`pd.ArrowDtype`) columns, and its SQL semantics (NULLs, three-valued logic,
join rules, aggregates, set operations, sorting, loops) are the functions in
these templates: the local engine runs them on whole relations, dask and ciel
on each partition. They live here, not in one engine's folder, so that no
engine reads another's files.

A program inlines only the optional helper groups it uses
(`{% if "joins" in helpers %}`); `HELPER_DEPS` says which groups call others.
"""

from __future__ import annotations

from pathlib import Path

#: The folder holding the runtime templates (and `files.py.j2`, which spark shares).
TEMPLATES = Path(__file__).parent / "templates"

#: The runtime library's templates, in the order a program inlines them.
RUNTIME_TEMPLATES: tuple[str, ...] = (
    "arrow_core.py.j2", "arrow_io.py.j2", "arrow_scalars.py.j2", "arrow_functions.py.j2", "arrow_relational.py.j2", "arrow_window.py.j2",
    "arrow_loops.py.j2",
)

#: Optional helper groups that call other groups (core and io are always included).
HELPER_DEPS: dict[str, set[str]] = {"setops": {"distinct"}}
