-- WHERE keeps only TRUE rows: NULL comparisons and NOT over NULL drop out.
SELECT id, name
FROM emp
WHERE NOT (salary > 4000) OR (active AND dept_id <> 20) OR name LIKE '%a%'
ORDER BY id;
