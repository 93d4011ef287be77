-- EXISTS / NOT EXISTS with a non-equality correlation, IN over a subquery.
SELECT e.id, e.name
FROM emp e
WHERE EXISTS (SELECT 1 FROM sales s WHERE s.emp_id = e.id AND s.amount > e.salary / 50)
  AND NOT EXISTS (SELECT 1 FROM sales s2 WHERE s2.emp_id = e.id AND s2.note = 'dup')
  AND e.dept_id IN (SELECT id FROM dept WHERE region IS NOT NULL)
ORDER BY e.id;
