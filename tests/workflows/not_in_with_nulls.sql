-- NOT IN over a subquery that yields a NULL rejects every row (SQL's rule);
-- the second output shows NOT IN over a NULL-free subquery.
CREATE TABLE none_left AS
SELECT id FROM emp WHERE dept_id NOT IN (SELECT id FROM dept);
COPY (SELECT count(*) AS n FROM none_left) TO 'conformance_not_in.csv';
SELECT id FROM emp WHERE dept_id NOT IN (SELECT id FROM dept WHERE id IS NOT NULL) ORDER BY id;
