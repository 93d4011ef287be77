-- CUBE over an expression key, GROUPING SETS with an empty set and a
-- duplicate set (duplicate rows, as in SQL), and a plain key combined with
-- a ROLLUP (cross product of the sets).
SELECT region, extract(year FROM hired) AS yr, grouping(region, extract(year FROM hired)) AS g, count(*) AS n,
       max(name) AS last_name
FROM emp e LEFT JOIN dept d ON e.dept_id = d.id
GROUP BY CUBE (region, extract(year FROM hired))
UNION ALL
SELECT region, NULL, 10 + grouping(region), count(*), NULL
FROM emp e LEFT JOIN dept d ON e.dept_id = d.id
GROUP BY GROUPING SETS ((region), (), (region))
UNION ALL
SELECT dname, dept_id, 20 + grouping(dname, dept_id), count(*), min(name)
FROM emp e JOIN dept d ON e.dept_id = d.id
GROUP BY dname, ROLLUP (dept_id)
ORDER BY 3, 1 NULLS FIRST, 2 NULLS FIRST, 4;
