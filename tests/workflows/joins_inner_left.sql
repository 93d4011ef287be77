-- Inner and left joins; NULL keys never match; a left join's ON residual
-- keeps unmatched left rows.
SELECT e.id, e.name, d.dname, s.amount
FROM emp e
JOIN dept d ON e.dept_id = d.id
LEFT JOIN sales s ON s.emp_id = e.id AND s.amount > 50
ORDER BY e.id, s.amount NULLS FIRST;
