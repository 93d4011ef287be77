"""Shortest road distances from town 0 to every town it can reach.

    musketeer run examples/sssp.py --backend local

Bellman-Ford as a vertex program: towns with a known distance offer
distance + km to their neighbours, every town keeps its best offer, until
no distance changes. Negative road lengths would be reported as an error
when the workflow runs.
"""

from musketeer import col, read, sssp

roads = read("data/roads.csv")  # from_town, to_town, km
distances = sssp(roads, 0, src="from_town", dst="to_town", weight="km")

workflow = distances.order_by(col("distance").desc(), "id").limit(10)

if __name__ == "__main__":
    print(workflow.collect())
