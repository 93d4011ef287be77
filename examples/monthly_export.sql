-- Monthly order counts and revenue, written to monthly_revenue.csv.
--
--   musketeer run examples/monthly_export.sql
--
-- No --data-dir needed: the table is named by its path, which is resolved
-- against this file's directory. COPY targets are relative to the current
-- directory, as in other SQL engines.
COPY (
    SELECT EXTRACT(MONTH FROM order_date)                       AS month,
           COUNT(*)                                             AS orders,
           SUM(CASE WHEN status = 'returned' THEN 1 ELSE 0 END) AS returned,
           ROUND(SUM(amount * (1 - COALESCE(discount, 0))), 2)  AS net_revenue
    FROM 'data/orders.csv'
    WHERE order_date >= DATE '2024-01-01' AND order_date < DATE '2025-01-01'
    GROUP BY EXTRACT(MONTH FROM order_date)
    ORDER BY month
) TO 'monthly_revenue.csv';
