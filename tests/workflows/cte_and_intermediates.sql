-- CREATE TABLE AS names an intermediate; a CTE used twice is one shared node.
CREATE TABLE per_emp AS
SELECT emp_id, sum(amount) AS total FROM sales WHERE emp_id IS NOT NULL GROUP BY emp_id;

WITH ranked AS (
    SELECT p.emp_id, p.total, e.name, e.dept_id FROM per_emp p JOIN emp e ON e.id = p.emp_id
)
SELECT r.name, r.total, d.dname
FROM ranked r LEFT JOIN dept d ON d.id = r.dept_id
WHERE r.total >= (SELECT avg(total) FROM ranked)
ORDER BY r.total DESC, r.name;
