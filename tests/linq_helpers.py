"""Shared by the Python-API tests (test_linq.py, test_graph.py): the backend
matrix, known backend gaps, and small conversions.

Iteration tests run on every backend Musketeer knows (`api.BACKENDS`); one
that is not available here is skipped with its own reason, except where
MUSKETEER_REQUIRE_BACKENDS (CI) says it must run.

`GAPS` lists what a backend cannot do yet that these tests check. Results
are still checked on that backend; the check of the missing feature then
ends the test as an xfail with the reason, and fails loudly once the backend
does it after all (so the entry gets removed).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any, Iterator

import pandas as pd
import pytest

from musketeer.ir import DataError
from musketeer import api

BACKENDS: list[str] = list(api.BACKENDS)


def unavailable(name: str) -> str | None:
    """Why backend `name` cannot run here, or None when it can."""
    try:
        api.get_backend(name)
    except Exception as err:  # noqa: BLE001 - the reason is the message
        return str(err)
    return None


def _param(name: str) -> Any:
    required = {b.strip() for b in os.environ.get("MUSKETEER_REQUIRE_BACKENDS", "").split(",") if b.strip()}
    reason = unavailable(name)
    if reason is None or name in required:  # a required backend runs (and fails) even when unavailable
        return pytest.param(name, id=name)
    return pytest.param(name, id=name, marks=pytest.mark.skip(reason=f"backend {name} unavailable: {reason}"))


#: Decorator: run the test once per backend (argument `backend`).
EVERY_BACKEND = pytest.mark.parametrize("backend", [_param(b) for b in BACKENDS])

#: Engines whose iterative runs cost tens of seconds each on a 2-core machine
#: (JVM / scheduler per iteration). Heavy graph tests run on them in the slow
#: suite; the data-dependent-iteration and max_iter tests stay in the default run.
CLUSTER_ENGINES = {"spark", "dask"}


def _heavy_param(name: str) -> Any:
    p = _param(name)
    if name not in CLUSTER_ENGINES:
        return p
    return pytest.param(*p.values, id=p.id, marks=(*p.marks, pytest.mark.slow))


#: Like EVERY_BACKEND, with the cluster engines' runs in the slow suite.
EVERY_BACKEND_HEAVY = pytest.mark.parametrize("backend", [_heavy_param(b) for b in BACKENDS])


#: backend -> {feature: why it is missing}. Features: "loop_metrics" (per-loop
#: iterations/converged in RunResult.metrics, and a RuntimeWarning when a loop
#: stops at max_iter); "udf_errors" (an ir.DataError raised inside a UDF
#: reaches the caller as itself, so the CLI reports it as a user error).
GAPS: dict[str, dict[str, str]] = {}


def gap(backend: str, feature: str) -> str | None:
    return GAPS.get(backend, {}).get(feature)


def as_dict(frame: pd.DataFrame, key: str, value: str) -> dict[Any, Any]:
    """{key: value} from two result columns, NULLs as None."""
    keys = frame[key].astype(object).where(frame[key].notna(), None).tolist()
    values = frame[value].astype(object).where(frame[value].notna(), None).tolist()
    return dict(zip(keys, values))


def loop_metrics(metrics: dict[str, Any], backend: str = "local") -> dict[str, Any]:
    """The one loop's {iterations, converged, ...} entry of a run's metrics
    (an xfail on a backend with the "loop_metrics" gap)."""
    loops = metrics.get("loops", {})
    reason = gap(backend, "loop_metrics")
    if reason is not None:
        assert not loops, f"backend {backend} reports loop metrics now: remove its 'loop_metrics' entry from GAPS"
        pytest.xfail(f"backend {backend}: {reason}")
    assert len(loops) == 1, f"expected one loop in the metrics, got {metrics}"
    return next(iter(loops.values()))


@contextlib.contextmanager
def raises_data_error(backend: str, match: str) -> Iterator[None]:
    """pytest.raises(DataError, match=...), or an xfail on a backend with the
    "udf_errors" gap (after checking the message still gets through)."""
    reason = gap(backend, "udf_errors")
    if reason is None:
        with pytest.raises(DataError, match=match):
            yield
        return
    with pytest.raises(Exception) as info:  # noqa: PT011 - the wrapper class is the backend's
        yield
    assert not isinstance(info.value, DataError), \
        f"backend {backend} raises DataError now: remove its 'udf_errors' entry from GAPS"
    assert re.search(match, str(info.value)), str(info.value)
    pytest.xfail(f"backend {backend}: {reason}")
