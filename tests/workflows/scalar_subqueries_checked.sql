-- Scalar subqueries that are not provably single-row: checked at run time
-- (each returns at most one row here, so no error), correlated and not,
-- with no row (NULL), with DISTINCT, and inside expressions.
SELECT
    e.id,
    (SELECT d.dname FROM dept d WHERE d.id = e.dept_id) AS dname,
    (SELECT DISTINCT s.amount FROM sales s WHERE s.emp_id = e.id AND s.note = 'dup') AS dup_amount,
    (SELECT d.region FROM dept d WHERE d.dname = 'Legal') AS legal_region,
    coalesce((SELECT s.qty FROM sales s WHERE s.emp_id = e.id AND s.day = DATE '2023-01-31'), -1) + 1 AS q
FROM emp e
WHERE e.salary > (SELECT salary FROM emp WHERE name = 'Eve') OR e.salary IS NULL
ORDER BY e.id;
