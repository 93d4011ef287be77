"""PageRank of a small web graph, iterated until it converges.

    musketeer run examples/pagerank.py --backend local --metrics

Same definition and stop rule as networkx.pagerank (damping 0.85, stop when
the ranks move by less than N * tol in total), here with a tighter tol.
`--metrics` shows how many iterations it took. The loop is an IR While over
Join -> Project -> Aggregate -> Join -> Project; see it with
`musketeer explain examples/pagerank.py`.
"""

from musketeer import col, pagerank, read

links = read("data/web_links.csv")  # src, dst: one row per link
ranks = pagerank(links, alpha=0.85, tol=1e-10, max_iter=200)

# The 15 most important pages and how many pages link to each.
inbound = links.group_by("dst").agg(links_in=col("src").count()).rename(dst="id")
workflow = (ranks.join(inbound, on="id", how="left")
            .order_by(col("rank").desc(), "id")
            .limit(15))

if __name__ == "__main__":
    print(workflow.collect())
