"""Shared by the Python-API tests (test_linq.py, test_graph.py): the backend
matrix and small conversions.

Iteration tests run on every backend Musketeer knows (`api.BACKENDS`); one
that is not available here is skipped with its own reason, except where
MUSKETEER_REQUIRE_BACKENDS (CI) says it must run.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import pytest

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


def as_dict(frame: pd.DataFrame, key: str, value: str) -> dict[Any, Any]:
    """{key: value} from two result columns, NULLs as None."""
    keys = frame[key].astype(object).where(frame[key].notna(), None).tolist()
    values = frame[value].astype(object).where(frame[value].notna(), None).tolist()
    return dict(zip(keys, values))


def loop_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The one loop's {iterations, converged, ...} entry of a run's metrics."""
    loops = metrics.get("loops", {})
    assert len(loops) == 1, f"expected one loop in the metrics, got {metrics}"
    return next(iter(loops.values()))
