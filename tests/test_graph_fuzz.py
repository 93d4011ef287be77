"""The graph fuzzer's quick seeded run (tests/fuzz/graphs.py): random and
degenerate graphs, every algorithm and two vertex programs, against
networkx, on the local engine and on ciel. Long runs: `python -m tests.fuzz
graphs --graphs N --engines local,dask,spark,ciel --seed S`."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.fuzz import graphs
from tests.linq_helpers import unavailable


def test_generator_covers_the_degenerate_shapes() -> None:
    rng = random.Random(0)
    cases = [graphs.random_graph(rng, n) for n in range(300)]
    shapes = {c.shape for c in cases}
    assert shapes == set(graphs.SHAPES)
    assert any(c.ids == "str" for c in cases) and any(c.ids == "int" and any(
        isinstance(v, int) and v < 0 for v in c.vertices) for c in cases)
    zero_out = [c for c in cases if c.shape == "zero_out_weight"]
    assert all(any(sum(w for u, _, w in c.edges if u == v) == 0 and any(u == v for u, _, _ in c.edges)
                   for v in c.vertices) for c in zero_out)
    assert any(len(c.edges) != len({e[:2] for e in c.edges}) for c in cases)  # parallel edges


@pytest.mark.parametrize("backend,seed,count", [("local", 14, 24), ("ciel", 15, 4)])
def test_quick_graph_fuzz_agrees_with_networkx(tmp_path: Path, backend: str, seed: int, count: int) -> None:
    reason = unavailable(backend)
    if reason is not None:
        pytest.skip(reason)
    run = graphs.fuzz_graphs(seed, count, [backend], tmp_path)
    assert run.checks > 3 * count
    assert not run.disagreements, "\n".join(map(str, run.disagreements))
