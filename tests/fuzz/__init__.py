"""Differential fuzzers: random inputs, every engine, an independent oracle.

- `sql`: random tables and queries (SQLsmith's generation, SQLancer's oracles):
  every engine against DuckDB on the same SQL text, and ternary logic
  partitioning (TLP) as a second oracle; failures are shrunk and saved as
  regression workflows the conformance suite runs (tests/workflows/fuzz/).
- `graphs`: random and degenerate graphs against networkx, for every graph
  algorithm and for `vertex_program`.

Both are seeded: a seed and a case number reproduce one case exactly. The
default test suite runs a quick seeded sample (tests/test_fuzz_sql.py,
tests/test_graph_fuzz.py); long runs are `python -m tests.fuzz ...`.
"""
