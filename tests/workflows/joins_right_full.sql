-- Right and full outer joins, with a residual condition.
SELECT e.id AS emp, d.id AS dept, d.dname
FROM emp e
FULL OUTER JOIN dept d ON e.dept_id = d.id AND e.salary > 3000;
