-- FILTER (WHERE), variance and standard deviation (sample and population),
-- MEDIAN / QUANTILE_CONT / QUANTILE_DISC (also as PERCENTILE_... WITHIN
-- GROUP, DESC), STRING_AGG with ORDER BY; groups with one value, no values and NULL keys.
SELECT
    dept_id,
    count(*) FILTER (WHERE salary > 4000) AS n_high,
    sum(salary) FILTER (WHERE active) AS active_total,
    round(var_samp(salary), 6) AS var_s,
    round(var_pop(salary), 6) AS var_p,
    round(stddev(salary), 6) AS sd_s,
    round(stddev_pop(salary), 6) AS sd_p,
    median(salary) AS med,
    quantile_cont(salary, 0.25) AS q1,
    quantile_disc(salary, 0.75) AS q3_disc,
    percentile_disc(0.3) WITHIN GROUP (ORDER BY hired DESC) AS hired_p30,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY salary) AS p90,
    string_agg(name, ', ' ORDER BY name DESC) AS names,
    string_agg(name ORDER BY hired NULLS FIRST, id) AS names_by_hire
FROM emp
GROUP BY dept_id
ORDER BY dept_id NULLS FIRST;
