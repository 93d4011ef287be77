-- UNION / INTERSECT / EXCEPT with and without ALL (bag semantics), NULLs equal.
SELECT dept_id AS k FROM emp
UNION ALL SELECT id FROM dept
UNION SELECT emp_id FROM sales WHERE emp_id > 8
ORDER BY k NULLS FIRST;
