"""k-means over the table `points` (id, x, y), for benchmarks/auto_choice.py.

    musketeer run benchmarks/workflows/kmeans_points.py --table points=examples/data/points.csv

The same Lloyd iteration as examples/kmeans.py (whose module reads its own
CSV, so it is not imported here): cross join points x centroids, nearest
centroid per point, new centroid = mean of its points; stop when no
centroid moves by 1e-6 or more (at most 30 iterations).
"""

from musketeer import Dataset, col, table

START = (1, 2, 5, 9)


def step(points: Dataset, centroids: Dataset) -> Dataset:
    pairs = points.join(centroids, how="cross").with_columns(
        d2=(col("x") - col("cx")) ** 2 + (col("y") - col("cy")) ** 2)
    nearest = pairs.group_by("id").agg(best=col("d2").min())
    chosen = (pairs.join(nearest, on="id").where(col("d2") == col("best"))
              .group_by("id").agg(cluster=col("cluster").min()))
    return (points.join(chosen, on="id").group_by("cluster")
            .agg(cx=col("x").mean(), cy=col("y").mean()))


def moved_less_than(eps: float):
    def until(old: Dataset, new: Dataset):
        both = old.join(new, on="cluster", suffixes=("_old", ""))
        shift = both.agg(shift=((col("cx") - col("cx_old")) ** 2 + (col("cy") - col("cy_old")) ** 2).max())
        return shift.shift < eps * eps
    return until


points = table("points")
start = points.where(col("id").isin(START)).select(cluster=col("id"), cx=col("x"), cy=col("y"))
workflow = (start.iterate(lambda c: step(points, c), until=moved_less_than(1e-6), max_iter=30, name="centroids")
            .order_by("cluster"))
