-- fuzz seed 7001 case 609 (duckdb) on local: count(DISTINCT a.f) counted -0.0 and 0.0 as two values
-- (17 instead of 16; shrunk by hand): the aggregate's DISTINCT hashed floats bit for bit.
-- xfail[dask]: the dask engine's DISTINCT aggregates hash floats bit for bit (-0.0 <> 0.0)
SELECT a.k AS c0, count(DISTINCT a.f) AS c1, sum(DISTINCT a.f) AS c2, (SELECT count(DISTINCT x.f) FROM t0 AS x) AS c3 FROM t0 AS a GROUP BY a.k ORDER BY 1;
