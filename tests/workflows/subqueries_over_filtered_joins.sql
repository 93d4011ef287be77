-- Correlated subqueries whose outer query is a filtered join (TPC-H Q17 and
-- Q18 shapes): the grouped subquery is restricted to the outer keys first and
-- the IN / NOT IN joins move below the join. NULL keys on both sides,
-- employees without sales (COUNT gives 0, AVG gives NULL).
SELECT
    e.id,
    d.dname,
    (SELECT count(*) FROM sales s WHERE s.emp_id = e.id) AS n_sales,
    (SELECT avg(s.amount) FROM sales s WHERE s.emp_id = e.id) AS avg_amount
FROM emp e, dept d
WHERE e.dept_id = d.id
  AND d.region IS NOT NULL
  AND e.id IN (SELECT emp_id FROM sales GROUP BY emp_id HAVING sum(qty) >= 2 OR count(*) = 1)
  AND e.dept_id NOT IN (SELECT id FROM dept WHERE budget < 90000 AND id IS NOT NULL)
  AND (e.salary IS NULL OR e.salary > (SELECT 5 * avg(s.amount) FROM sales s WHERE s.emp_id = e.id))
ORDER BY e.id;
