-- Customers who spent more than twice their segment's average, built in steps.
--
--   musketeer run examples/big_spenders.sql --data-dir examples/data
--
-- Each CREATE TABLE names an intermediate result that later statements read;
-- the final SELECT is the workflow's result.

CREATE TABLE customer_totals AS
SELECT c.customer_id, c.name, c.segment,
       COUNT(*)      AS n_orders,
       SUM(o.amount) AS total
FROM customers c
JOIN orders o ON o.customer_id = c.customer_id
WHERE o.amount IS NOT NULL AND o.status <> 'cancelled'
GROUP BY c.customer_id, c.name, c.segment;

CREATE TABLE segment_average AS
SELECT segment, AVG(total) AS avg_total
FROM customer_totals
GROUP BY segment;

SELECT t.name, t.segment, t.n_orders,
       ROUND(t.total, 2)     AS total,
       ROUND(s.avg_total, 2) AS segment_avg
FROM customer_totals t
JOIN segment_average s ON t.segment = s.segment
WHERE t.total > 2 * s.avg_total
ORDER BY t.total DESC, t.name;
