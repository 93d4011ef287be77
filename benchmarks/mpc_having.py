"""HAVING after a hybrid GROUP BY (issue #15's slow case): four parties
(tests/test_mpc_nulls.py's config, the agency both STP and recipient),
`rows` per party, GROUP BY an insurance id the agency may see, with and
without HAVING COUNT(*) > 1; secure seconds at the recipient, and the
answer checked against DuckDB.

    .venv/bin/python benchmarks/mpc_having.py 150
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from musketeer.mpc.config import load_config  # noqa: E402
from musketeer.mpc.launch import free_ports, metrics  # noqa: E402
from tests.mpc_helpers import cleartext_answer, run_query, same_answer, write_parties  # noqa: E402
from tests.test_mpc_nulls import PARTIES, _tables  # noqa: E402


def main(rows: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="mpc-having-"))
    tables = _tables(rows)
    rng = np.random.default_rng(5)
    for name in ("visits_a", "claims"):  # many groups
        tables[name][1]["ins_id"] = pd.Series(rng.integers(1, rows, rows), dtype="Int64")
    config_path = write_parties(directory, PARTIES, ["agency"], free_ports(4), tables)
    for label, having in (("without HAVING", ""), ("with HAVING", " HAVING COUNT(*) > 1")):
        sql = ("SELECT ins_id, COUNT(*) AS n, SUM(amount) AS s FROM (SELECT ins_id, amount FROM claims UNION ALL "
               f"SELECT ins_id, cost AS amount FROM visits_a) u GROUP BY ins_id{having}")
        runs, got = run_query(config_path, sql, PARTIES, name=label.replace(" ", "_"), extra=["--metrics"])
        failed = [r.stderr.strip().splitlines()[-1:] for r in runs.values() if r.returncode]
        ok = not failed and same_answer(got, cleartext_answer(sql, load_config(str(config_path))))
        secure = metrics(runs["agency"].stderr).get("secure_seconds")
        print(f"{label:15} rows/party {rows:5}  secure {secure} s  {'matches DuckDB' if ok else failed or 'DIFFERS'}",
              flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 150)
