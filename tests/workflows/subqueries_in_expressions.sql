-- EXISTS and IN (subquery) inside OR, NOT, CASE and the SELECT list
-- (mark joins): uncorrelated and correlated by equality, NULLs on both
-- sides of IN (three-valued: NULL, not FALSE), empty subqueries.
SELECT
    e.id,
    e.dept_id IN (SELECT d.id FROM dept d) AS in_dept,
    e.dept_id IN (SELECT d.id FROM dept d WHERE d.region = 'EU') AS in_eu,
    e.dept_id NOT IN (SELECT s.emp_id FROM sales s) AS not_seller_dept,
    EXISTS (SELECT 1 FROM sales s WHERE s.emp_id = e.id) AS has_sales,
    CASE WHEN EXISTS (SELECT 1 FROM sales s WHERE s.emp_id = e.id AND s.amount > 100) THEN 'big'
         WHEN e.salary IN (SELECT salary FROM emp WHERE dept_id = 20) THEN 'like20'
         ELSE 'other' END AS kind,
    e.salary IN (SELECT s.amount * 10 FROM sales s WHERE s.emp_id = e.id) AS paid_tenfold,
    e.id IN (SELECT emp_id FROM sales WHERE amount < 0) AS in_empty
FROM emp e
WHERE e.active OR EXISTS (SELECT 1 FROM sales s WHERE s.emp_id = e.id AND s.qty > 1)
   OR NOT (e.dept_id IN (SELECT id FROM dept WHERE budget > 90000))
ORDER BY e.id;
