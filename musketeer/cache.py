"""The compiled-program cache: an unchanged workflow over unchanged inputs
runs its program again without parsing or planning (as dbt's partial
parsing reuses what it parsed before).

A cache entry is one JSON file named by a key over what decides the
program: Musketeer's version, the backend asked for, the workflow file's
path and text, the data directory and its file names, the `--table`
bindings, the cost profile and the current directory (relative paths in SQL
resolve against it). The entry holds the generated program, the optimized
IR (as JSON, for the outputs the glue writes) and, per input file, its size,
modification time and the columns the program reads with their types.

On lookup an input whose size and time are unchanged is taken as is; one
that changed has its schema read again, and the entry is used only if every
column the program reads is still there with the same type (the data may
change freely: the program reads it at run time). Only `.sql` and `.json`
workflow files are cached: a `.py` workflow runs Python whose imports may
change without its text changing.

Entries live in `$MUSKETEER_CACHE_DIR`, else `~/.cache/musketeer/programs`
(XDG_CACHE_HOME respected); `MUSKETEER_CACHE=off` turns the cache off. A
file that cannot be read or written is ignored: the cache only ever saves
time.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musketeer import __version__

LAYERS = ("musketeer", "musketeer.ir", "musketeer.frontends", "musketeer.backends",
          "musketeer.cost_model", "musketeer.mpc")

CACHED_SUFFIXES = (".sql", ".json")
FORMAT = 1


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The version string plus a fingerprint of the code that generates
    programs: every module and template file's name, size and mtime.

    `__version__` alone stays the same across edits of a checkout (and
    across upgrades that forget to bump it), and a program cached by older
    code would then keep running after a fix: a stale, possibly wrong
    answer. Stat-ing the few hundred files costs a few milliseconds."""
    digest = hashlib.sha256(__version__.encode())
    for name in LAYERS:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for root, dirs, files in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for file in sorted(files):
                    if file.endswith((".py", ".j2")):
                        stat = os.stat(os.path.join(root, file))
                        digest.update(f"{name}/{os.path.relpath(os.path.join(root, file), folder)}"
                                      f":{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def cache_dir() -> Path:
    explicit = os.environ.get("MUSKETEER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "musketeer" / "programs"


def enabled() -> bool:
    return os.environ.get("MUSKETEER_CACHE", "on").lower() not in ("off", "0", "no", "false")


@dataclass(frozen=True)
class Hit:
    """A usable entry: which backend runs `program` (text) for `workflow_json`."""

    backend: str
    program: str
    workflow_json: str


def key(path: str | os.PathLike[str], backend: str, data_dir: str | None, tables: dict[str, str] | None,
        options: dict[str, Any]) -> str | None:
    """The entry key for a run, or None when this run is not cached (an
    inline or .py workflow, an unreadable file)."""
    if not isinstance(path, (str, Path)) or Path(path).suffix.lower() not in CACHED_SUFFIXES:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
        listing = sorted(os.listdir(data_dir)) if data_dir else []
    except (OSError, UnicodeDecodeError):
        return None
    parts = {
        "format": FORMAT, "version": code_version(), "backend": backend, "workflow": os.path.abspath(path),
        "text": text, "data_dir": os.path.abspath(data_dir) if data_dir else None, "listing": listing,
        "tables": sorted((k, os.path.abspath(v)) for k, v in (tables or {}).items()),
        "profile": options.get("profile") or os.environ.get("MUSKETEER_PROFILE"), "cwd": os.getcwd(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def lookup(entry_key: str) -> Hit | None:
    """The entry for `entry_key` if it exists and its inputs still fit."""
    try:
        entry = json.loads((cache_dir() / f"{entry_key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if entry.get("format") != FORMAT or entry.get("version") != code_version():
        return None
    for item in entry["inputs"]:
        if not _still_fits(item):
            return None
    return Hit(entry["backend"], entry["program"], entry["workflow"])


def _still_fits(item: dict[str, Any]) -> bool:
    try:
        stat = os.stat(item["path"])
    except OSError:
        return False
    if [stat.st_size, stat.st_mtime_ns] == [item["size"], item["mtime_ns"]]:
        return True
    from musketeer.catalog import read_table
    from musketeer.ir.types import MusketeerError, parse_type

    try:
        schema = read_table(item["table"], item["path"]).schema
        return all(source in schema and schema.dtype(source) == parse_type(dtype) for source, dtype in item["columns"])
    except (MusketeerError, OSError):
        return False


def store(entry_key: str, backend: str, program: str, workflow: Any) -> None:
    """Remember a run's program (best effort: errors are ignored)."""
    from musketeer.ir import operators as O

    inputs: dict[str, dict[str, Any]] = {}
    try:
        for op in workflow.ops():
            if isinstance(op, O.Scan):
                stat = os.stat(op.path)
                item = inputs.setdefault(op.path, {"table": op.table, "path": op.path, "size": stat.st_size,
                                                   "mtime_ns": stat.st_mtime_ns, "columns": []})
                item["columns"] += [[c.source, str(c.dtype)] for c in op.columns]
        entry = {"format": FORMAT, "version": code_version(), "backend": backend, "program": program,
                 "workflow": workflow.to_json(indent=None), "inputs": list(inputs.values())}
        directory = cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".entry-", suffix=".json", dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            json.dump(entry, f)
        os.replace(temporary, directory / f"{entry_key}.json")
    except (OSError, TypeError, ValueError):
        pass
