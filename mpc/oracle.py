"""The cleartext answer to a joint query: every table in one place, run on
the local engine. Tests and the demo compare the MPC result with it."""

from __future__ import annotations

import pandas as pd

from musketeer.mpc.config import PartiesConfig


def cleartext_answer(query_path: str, config: PartiesConfig) -> pd.DataFrame:
    from musketeer.api import run_workflow

    tables = {t.name: t.path for t in config.tables.values()}
    return run_workflow(query_path, tables=tables).outputs["result"]


def same_answer(got: pd.DataFrame, want: pd.DataFrame, rel: float = 1e-4) -> bool:
    """Equal up to fixed-point precision (relative `rel`, absolute 1e-3)."""
    if list(got.columns) != list(want.columns) or len(got) != len(want):
        return False
    for c in got.columns:
        a, b = got[c].astype(float).to_numpy(), want[c].astype(float).to_numpy()
        if not all(abs(x - y) <= max(1e-3, rel * abs(y)) for x, y in zip(a, b)):
            return False
    return True
