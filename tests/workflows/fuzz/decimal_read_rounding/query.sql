-- fuzz seed 2026 case 190 (duckdb) on local: rows differ (compared as multisets): actual 2 rows, expected 3 columns: (c0, c1) 2 expected rows missing from actual, first ones: (False, 17) (True, 1) 1 actual rows not in expected, first ones: (False, 18)
-- reproduce: python -m tests.fuzz sql --seed 2026 --start 190 --queries 1 --engines local
SELECT count(round(a.f, 0)) AS c0 FROM t1 AS a LEFT JOIN t0 AS b ON a.j = b.k GROUP BY (b.d IN (CAST(-2.25 AS DECIMAL(12,2)), CAST(-2.25 AS DECIMAL(12,2)), CAST(99.99 AS DECIMAL(12,2))));
