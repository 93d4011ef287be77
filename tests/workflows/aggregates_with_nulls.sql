-- NULL group keys form one group; SUM of all NULLs is NULL; COUNT(col)
-- skips NULLs; COUNT(DISTINCT ...).
SELECT
    dept_id,
    count(*) AS n,
    count(salary) AS n_salary,
    sum(salary) AS total,
    avg(salary) AS mean,
    min(hired) AS first_hire,
    max(name) AS last_name,
    sum(bonus) AS bonus_total,
    count(DISTINCT active) AS n_active_values,
    sum(CASE WHEN active THEN 1 ELSE 0 END) AS n_active
FROM emp
GROUP BY dept_id
ORDER BY dept_id NULLS FIRST;
