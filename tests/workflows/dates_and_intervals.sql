-- Date literals, intervals (calendar months clamp to the month's end), EXTRACT.
SELECT
    id,
    hired + INTERVAL '1' MONTH AS next_month,
    hired - INTERVAL 10 DAY AS ten_days_before,
    hired + INTERVAL '1' YEAR AS next_year,
    EXTRACT(quarter FROM hired) AS q,
    EXTRACT(day FROM hired) AS d
FROM emp
WHERE hired >= DATE '2018-01-01' AND hired < DATE '2022-01-01' + INTERVAL '6' MONTH
ORDER BY id;
