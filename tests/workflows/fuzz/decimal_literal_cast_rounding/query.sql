-- fuzz seed 7001 case 87 (duckdb) on local: CAST(0.5 AS BIGINT) gave 0 where DuckDB gives 1
-- (shrunk by hand). DuckDB types 0.5 as DECIMAL(2,1), and a DECIMAL rounds half away from zero.
-- xfail: the SQL frontend types 1.5 as DOUBLE (rounds half to even), DuckDB as DECIMAL(2,1) (half away from zero) (owner: sql)
SELECT CAST(0.5 AS BIGINT) AS c0, CAST(2.5 AS BIGINT) AS c1, CAST(-2.5 AS BIGINT) AS c2, CAST(1.5 AS BIGINT) AS c3 FROM t0;
