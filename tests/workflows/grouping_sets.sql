-- ROLLUP, CUBE and GROUPING SETS with GROUPING(); NULL group keys in the
-- data (dept_id, active) must stay apart from the NULLs of rolled-up keys.
SELECT dept_id, active, grouping(dept_id) AS g_dept, grouping(dept_id, active) AS g_both,
       count(*) AS n, sum(salary) AS total
FROM emp
GROUP BY ROLLUP (dept_id, active)
HAVING count(*) > 0
ORDER BY g_both, dept_id NULLS FIRST, active NULLS FIRST;
