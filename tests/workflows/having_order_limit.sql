-- HAVING, ORDER BY an aggregate and a key with explicit NULL placement, OFFSET.
SELECT emp_id, sum(amount) AS total, count(*) AS n
FROM sales
GROUP BY emp_id
HAVING count(*) >= 1 AND sum(amount) IS NOT NULL
ORDER BY total DESC, emp_id NULLS FIRST
LIMIT 5 OFFSET 2;
