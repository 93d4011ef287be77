-- A global aggregate over no rows still returns one row.
SELECT count(*) AS n, sum(amount) AS total, max(day) AS last_day, avg(qty) AS mean_qty
FROM sales
WHERE amount > 1000000;
