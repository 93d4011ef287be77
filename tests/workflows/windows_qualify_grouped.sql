-- Windows over a grouped query (RANK over SUM), QUALIFY on a window alias,
-- a window in ORDER BY, and a filter on the partition key above the window.
SELECT dept_id, day_month, total, rnk, share
FROM (
    SELECT
        e.dept_id,
        extract(month FROM s.day) AS day_month,
        sum(s.amount) AS total,
        rank() OVER (PARTITION BY e.dept_id ORDER BY sum(s.amount) DESC) AS rnk,
        sum(s.amount) / sum(sum(s.amount)) OVER (PARTITION BY e.dept_id) AS share
    FROM sales s JOIN emp e ON s.emp_id = e.id
    GROUP BY e.dept_id, extract(month FROM s.day)
    QUALIFY rnk <= 2
) t
WHERE dept_id IS NOT NULL
ORDER BY dept_id, rnk, day_month;
