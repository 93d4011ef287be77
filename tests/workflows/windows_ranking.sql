-- Ranking and offset window functions: ties in salary (6100.25), NULL
-- salaries (sorted last), NULL partition keys (one partition), ORDER BY DESC.
SELECT
    id,
    dept_id,
    salary,
    row_number() OVER (PARTITION BY dept_id ORDER BY salary DESC, id) AS rn,
    rank() OVER (ORDER BY salary DESC) AS rnk,
    dense_rank() OVER (ORDER BY salary DESC) AS drnk,
    percent_rank() OVER (PARTITION BY dept_id ORDER BY salary) AS prank,
    cume_dist() OVER (PARTITION BY dept_id ORDER BY salary) AS cdist,
    ntile(3) OVER (ORDER BY id) AS bucket,
    ntile(5) OVER (PARTITION BY dept_id ORDER BY id) AS bucket5,
    lag(salary) OVER (ORDER BY id) AS prev_salary,
    lead(name, 2, 'none') OVER (PARTITION BY dept_id ORDER BY id) AS name_after_next,
    lag(hired, 1, DATE '2000-01-01') OVER (PARTITION BY dept_id ORDER BY id DESC) AS hired_before
FROM emp
ORDER BY id;
