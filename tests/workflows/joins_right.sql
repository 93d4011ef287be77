SELECT d.dname, e.name
FROM emp e
RIGHT JOIN dept d ON e.dept_id = d.id
ORDER BY d.dname, e.name NULLS LAST;
