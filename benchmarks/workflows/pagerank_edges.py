"""PageRank over the table `edges` (src, dst), for benchmarks/auto_choice.py.

    musketeer run benchmarks/workflows/pagerank_edges.py --table edges=benchmarks/data/pagerank/ba_4005_5_s2024.parquet

networkx's definition (alpha 0.85); tol 1e-8 so bigger graphs run a dozen
or so iterations. The result is every vertex's rank, top 20 by rank.
"""

from musketeer import col, pagerank, table

workflow = pagerank(table("edges"), alpha=0.85, tol=1e-8, max_iter=100).order_by(col("rank").desc(), "id").limit(20)
