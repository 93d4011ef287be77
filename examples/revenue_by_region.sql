-- Revenue of shipped orders per region, biggest first.
--
--   musketeer run examples/revenue_by_region.sql --data-dir examples/data
--
-- Orders whose customer is unknown, customers without a region and orders
-- not yet priced (NULL amount) drop out: inner joins, and SUM skips NULLs.
SELECT r.region_name              AS region,
       COUNT(*)                   AS orders,
       COUNT(DISTINCT c.customer_id) AS customers,
       ROUND(SUM(o.amount), 2)    AS revenue,
       ROUND(AVG(o.amount), 2)    AS avg_order
FROM orders o
JOIN customers c ON o.customer_id = c.customer_id
JOIN regions r   ON c.region_code = r.region_code
WHERE o.status = 'shipped'
GROUP BY r.region_name
ORDER BY revenue DESC;
