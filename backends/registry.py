"""The one list of backends: built-ins plus third-party engines.

Everything that needs to know which engines exist reads this module: the
CLI (`--backend` choices, cluster flags), the facade (`api.get_backend`),
the cost model (default profiles), `--backend auto` (candidates in
preference order, capabilities) and the tests.

Each backend's descriptor (`BACKEND` in `backends/<name>/__init__.py`, see
backends/base.py) declares its own name, preference, default cost profile,
cluster options, capabilities and `available()`. Descriptors are imported
when first listed; importing one never imports its engine library.

Adding a built-in is one line: its package name in BUILTINS. A third-party
engine is a distribution declaring an entry point in the group
`musketeer.backends`, named after the backend and pointing at its
descriptor object (`toy = "toy_backend:BACKEND"`) or at a module that
defines BACKEND, as Ibis and Fugue discover theirs.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from musketeer.backends.base import Backend, ClusterOption, RunOptions
from musketeer.ir.schema import suggest
from musketeer.ir.types import MusketeerError

#: Built-in backends: packages under musketeer.backends exporting BACKEND.
BUILTINS: tuple[str, ...] = (
    "local",
    "dask",
    "spark",
    "ciel",
    "duckdb",
)
#: The entry-point group third-party engines register under.
ENTRY_POINT_GROUP = "musketeer.backends"


class BackendError(MusketeerError):
    """An unknown backend, one that failed to load, or an unavailable one."""


@dataclass(frozen=True)
class Entry:
    """Where a backend's descriptor comes from, before it is loaded."""

    name: str
    origin: str  # "musketeer.backends.local" or "toy-backend 0.1 (entry point toy_backend:BACKEND)"
    load: Callable[[], Any]


def _builtin(name: str) -> Entry:
    module = f"musketeer.backends.{name}"
    return Entry(name, module, lambda: importlib.import_module(module))


def _plugin(ep: metadata.EntryPoint) -> Entry:
    dist = getattr(ep, "dist", None)
    where = f"{dist.name} {dist.version} " if dist is not None else ""
    return Entry(ep.name, f"{where}(entry point {ep.value})", ep.load)


@functools.cache
def entries() -> dict[str, Entry]:
    """Every backend name -> where its descriptor is, built-ins first. A
    plugin may not replace a built-in (a warning names it)."""
    out = {name: _builtin(name) for name in BUILTINS}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in out:
            warnings.warn(f"ignoring backend entry point {ep.name!r} ({ep.value}): "
                          f"a backend of that name is already registered", stacklevel=2)
            continue
        out[ep.name] = _plugin(ep)
    return out


@functools.cache
def _load(name: str) -> Backend | BackendError:
    entry = entries()[name]
    try:
        obj = entry.load()
    except ModuleNotFoundError as e:
        return BackendError(f"backend {name!r} needs the Python package {e.name!r} "
                            f"(pip install 'musketeer[{name}]' or the package that provides it)")
    except Exception as e:  # noqa: BLE001 - a broken plugin must not break the others
        return BackendError(f"backend {name!r} from {entry.origin} failed to load: {type(e).__name__}: {e}")
    backend = getattr(obj, "BACKEND", obj)
    problems = [a for a in ("name", "available", "generate", "run") if not hasattr(backend, a)]
    if problems:
        return BackendError(f"backend {name!r} from {entry.origin} is not a backend descriptor "
                            f"(missing {', '.join(problems)})")
    if backend.name != name:
        return BackendError(f"backend {name!r} from {entry.origin} calls itself {backend.name!r}")
    return backend


def names() -> list[str]:
    """Every registered backend that loads, in `auto` preference order
    (lower `preference` first, then registration order)."""
    loaded = [(n, _load(n)) for n in entries()]
    good = [(n, b) for n, b in loaded if not isinstance(b, BackendError)]
    order = {n: k for k, n in enumerate(entries())}
    return [n for n, b in sorted(good, key=lambda nb: (getattr(nb[1], "preference", 100), order[nb[0]]))]


def descriptor(name: str) -> Backend:
    """The descriptor of backend `name`; BackendError (one line) for an
    unknown name or a backend that cannot load."""
    if name not in entries():
        known = list(entries())
        raise BackendError(f"unknown backend {name!r}{suggest(name, known)} "
                           f"(known backends: {', '.join(['auto', *names()])})")
    backend = _load(name)
    if isinstance(backend, BackendError):
        raise backend
    return backend


def descriptors() -> list[Backend]:
    return [descriptor(n) for n in names()]


def available(name: str, options: RunOptions | None = None) -> tuple[bool, str]:
    """(True, "") or (False, why): `descriptor(name).available(options)`,
    with an unknown or unloadable backend also answered as a reason."""
    try:
        return descriptor(name).available(options)
    except BackendError as e:
        return False, str(e)


def cluster_options() -> list[tuple[str, ClusterOption]]:
    """(backend name, option) for every backend's cluster flags."""
    return [(b.name, opt) for b in descriptors() for opt in getattr(b, "cluster_options", ())]


def default_profiles() -> dict[str, dict[str, Any]]:
    """Backend name -> its declared default cost profile (BackendProfile
    fields as plain data; the cost model builds the profiles)."""
    return {b.name: dict(getattr(b, "default_profile", {}) or {}) for b in descriptors()}


def refresh() -> None:
    """Forget what was discovered (tests that install a plugin call this)."""
    entries.cache_clear()
    _load.cache_clear()
