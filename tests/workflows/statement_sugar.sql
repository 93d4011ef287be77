-- GROUP BY ALL, ORDER BY ALL, FETCH FIRST ... ROWS ONLY with OFFSET, and
-- DISTINCT ON (the first row per key in ORDER BY order; NULL keys group).
CREATE TABLE per_dept AS
SELECT dept_id, active, count(*) AS n, sum(salary) AS total
FROM emp
GROUP BY ALL;

CREATE TABLE top_sale AS
SELECT DISTINCT ON (emp_id) emp_id, amount, day
FROM sales
ORDER BY emp_id, amount DESC NULLS LAST, day;

SELECT dept_id, active, n, total, amount, day
FROM (SELECT p.dept_id, p.active, p.n, p.total, t.amount, t.day
      FROM per_dept p LEFT JOIN top_sale t ON t.emp_id = p.n
      ORDER BY ALL
      OFFSET 1 ROWS FETCH FIRST 6 ROWS ONLY) q
ORDER BY dept_id NULLS FIRST, active NULLS FIRST, n, total, amount, day;
