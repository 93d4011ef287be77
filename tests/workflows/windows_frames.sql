-- Aggregates and value functions over frames: the default frames (whole
-- partition; RANGE up to the current row's peers), ROWS, RANGE with
-- offsets on numbers and dates, GROUPS, frames that are empty, NULL values.
SELECT
    id,
    sum(salary) OVER (PARTITION BY dept_id) AS dept_total,
    count(*) OVER (PARTITION BY dept_id) AS dept_size,
    avg(salary) OVER (ORDER BY salary) AS running_avg_peers,
    sum(qty_like) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS moving_sum,
    min(name) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS min_name3,
    max(hired) OVER (PARTITION BY dept_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS max_hired_before,
    count(salary) OVER (ORDER BY salary RANGE BETWEEN 1000 PRECEDING AND 1000 FOLLOWING) AS near_salary,
    sum(id) OVER (ORDER BY hired RANGE BETWEEN INTERVAL 400 DAY PRECEDING AND CURRENT ROW) AS ids_last_400_days,
    count(*) OVER (ORDER BY dept_id GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS near_depts,
    sum(id) OVER (ORDER BY id ROWS BETWEEN 3 FOLLOWING AND 5 FOLLOWING) AS ahead,
    first_value(name) OVER (PARTITION BY dept_id ORDER BY id) AS first_name,
    last_value(name) OVER (PARTITION BY dept_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_name,
    nth_value(salary, 2) OVER (ORDER BY id) AS second_salary,
    max(bonus) OVER (PARTITION BY active ORDER BY id DESC ROWS BETWEEN CURRENT ROW AND 2 FOLLOWING) AS max_bonus
FROM (SELECT *, CAST(id * 2 AS BIGINT) AS qty_like FROM emp) e
ORDER BY id;
