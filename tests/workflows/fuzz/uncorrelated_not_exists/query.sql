-- fuzz seed 1 case 47 (duckdb) on local: rows differ (compared as multisets): actual 14 rows, expected 0 columns: (c0, c1, c2) 14 actual rows not in expected, first ones: (2022-12-29, 4, 2) (1970-01-01, 4, 3) (2023-09-26, 3, 2) (2023-09-26, 1, 3) (2023-09-26, 2, 2)
-- reproduce: python -m tests.fuzz sql --seed 1 --start 47 --queries 1 --engines local
SELECT count(a.b) AS c0 FROM t0 AS a WHERE (NOT EXISTS (SELECT 1 FROM t0 AS x0));
