-- WITH RECURSIVE: UNION ALL (stops when a pass adds no row; duplicates
-- kept) and UNION (a fixpoint: the transitive closure of a graph with a
-- cycle), the recursive part reading another table.
CREATE TABLE links AS
SELECT * FROM (VALUES (1, 2), (2, 3), (3, 1), (3, 4), (5, 6), (4, 4)) AS l(src, dst);

CREATE TABLE counted AS
WITH RECURSIVE steps(n, total) AS (
    SELECT 1, CAST(1 AS BIGINT)
    UNION ALL
    SELECT n + 1, total + n + 1 FROM steps WHERE n < 6
)
SELECT n, total FROM steps;

WITH RECURSIVE reach(src, dst) AS (
    SELECT src, dst FROM links
    UNION
    SELECT r.src, l.dst FROM reach r JOIN links l ON r.dst = l.src
)
SELECT r.src, r.dst, c.total
FROM reach r LEFT JOIN counted c ON c.n = r.src + r.dst
ORDER BY r.src, r.dst;
