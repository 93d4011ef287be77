"""Vertex-centric graph frontend: graph algorithms as relational While loops.

`vertex_program` lowers a gather-apply-scatter program over an edge list
(a `frontends.linq.Dataset`) to IR; `pagerank`, `sssp` and
`connected_components` are ready-made programs. Results are Datasets, so
they compose with the LINQ API (join, filter, order) before anything runs.
"""

from musketeer.frontends.graph.algorithms import connected_components, pagerank, sssp
from musketeer.frontends.graph.program import vertex_program

__all__ = ["connected_components", "pagerank", "sssp", "vertex_program"]
