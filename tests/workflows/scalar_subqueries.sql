-- Uncorrelated and correlated scalar subqueries (correlated COUNT maps a
-- missing group to 0, not NULL).
SELECT
    e.id,
    e.salary > (SELECT avg(salary) FROM emp) AS above_avg,
    (SELECT count(*) FROM sales s WHERE s.emp_id = e.id) AS n_sales,
    (SELECT max(amount) FROM sales s WHERE s.emp_id = e.id) AS best
FROM emp e
WHERE e.salary < (SELECT max(salary) FROM emp) OR e.salary IS NULL
ORDER BY e.id;
