"""Regenerate the small graph and point datasets in examples/data/ used by
the Python examples (committed; this documents their shape). Deterministic.

    python examples/make_graph_data.py

- web_links.csv (src, dst): a directed scale-free graph, 300 pages, for
  pagerank.py; no duplicate links or self-links, so networkx's DiGraph
  holds exactly these edges.
- roads.csv (from_town, to_town, km): a directed weighted graph, 120 towns,
  for sssp.py.
- friendships.csv (person_a, person_b): an undirected graph with several
  components, for connected_components.py.
- points.csv (id, x, y): 240 points around 4 centres, for kmeans.py.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import networkx as nx

DATA = Path(__file__).resolve().parent / "data"
SEED = 20240607


def write(name: str, header: list[str], rows: list[tuple[object, ...]]) -> None:
    with open(DATA / name, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main() -> None:
    rng = random.Random(SEED)
    web = nx.DiGraph(nx.scale_free_graph(300, seed=SEED))
    web.remove_edges_from(list(nx.selfloop_edges(web)))
    write("web_links.csv", ["src", "dst"], sorted(web.edges()))

    roads = nx.gnm_random_graph(120, 420, seed=SEED, directed=True)
    write("roads.csv", ["from_town", "to_town", "km"],
          sorted((u, v, round(rng.uniform(2, 80), 1)) for u, v in roads.edges()))

    friends = nx.Graph()
    offset = 0
    for size, p in ((40, 0.08), (25, 0.15), (12, 0.3), (6, 0.5), (3, 1.0)):
        part = nx.gnp_random_graph(size, p, seed=rng.randrange(10**6))
        part = part.subgraph(max(nx.connected_components(part), key=len))
        friends.add_edges_from((u + offset, v + offset) for u, v in part.edges())
        offset += size
    write("friendships.csv", ["person_a", "person_b"], sorted(friends.edges()))

    centres = [(2.0, 2.0), (8.0, 3.0), (5.0, 8.0), (9.0, 9.0)]
    points = []
    for i in range(240):
        cx, cy = centres[i % len(centres)]
        points.append((i + 1, round(rng.gauss(cx, 0.9), 4), round(rng.gauss(cy, 0.9), 4)))
    write("points.csv", ["id", "x", "y"], points)


if __name__ == "__main__":
    main()
