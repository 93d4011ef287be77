"""k-means clustering with the LINQ API, iterated until the centroids
move less than EPSILON.

    musketeer run examples/kmeans.py --backend local --metrics

Each iteration is plain relational algebra: pair every point with every
centroid (a cross join), keep each point's nearest centroid, and average
the points of each cluster. `iterate(..., until=...)` turns it into an IR
While whose stop rule compares the old and new centroids.
"""

from __future__ import annotations

from musketeer import Dataset, col, read

EPSILON = 1e-6
#: Points whose positions are the initial centroids (cluster = point id):
#: three start near the same centre, so the centroids have to travel.
START = (1, 2, 5, 9)


def assign(points: Dataset, centroids: Dataset) -> Dataset:
    """(id, x, y, cluster): each point with its nearest centroid (ties: lowest cluster)."""
    pairs = points.join(centroids, how="cross").with_columns(
        d2=(col("x") - col("cx")) ** 2 + (col("y") - col("cy")) ** 2)
    nearest = pairs.group_by("id").agg(best=col("d2").min())
    chosen = (pairs.join(nearest, on="id").where(col("d2") == col("best"))
              .group_by("id").agg(cluster=col("cluster").min()))
    return points.join(chosen, on="id")


def step(points: Dataset, centroids: Dataset) -> Dataset:
    """One Lloyd iteration: new centroids (cluster, cx, cy)."""
    return (assign(points, centroids).group_by("cluster")
            .agg(cx=col("x").mean(), cy=col("y").mean()))


def moved_less_than(eps: float):  # noqa: ANN201 - returns an until= function
    """until=: stop when no centroid moved by eps or more."""
    def until(old: Dataset, new: Dataset):  # noqa: ANN202
        both = old.join(new, on="cluster", suffixes=("_old", ""))
        shift = both.agg(shift=((col("cx") - col("cx_old")) ** 2 + (col("cy") - col("cy_old")) ** 2).max())
        return shift.shift < eps * eps
    return until


def kmeans(points: Dataset, start_ids: tuple[int, ...] = START, eps: float = EPSILON,
           max_iter: int = 100) -> Dataset:
    """Centroids after Lloyd's algorithm, starting at the points `start_ids`."""
    start = points.where(col("id").isin(start_ids)).select(cluster=col("id"), cx=col("x"), cy=col("y"))
    return start.iterate(lambda c: step(points, c), until=moved_less_than(eps), max_iter=max_iter,
                         name="centroids")


points = read("data/points.csv")  # id, x, y
workflow = kmeans(points).order_by("cluster")

if __name__ == "__main__":
    print(workflow.collect())
