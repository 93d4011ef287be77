CREATE TABLE a AS SELECT emp_id AS k, note FROM sales;
CREATE TABLE b AS SELECT id AS k, 'dup' AS note FROM emp WHERE id IN (7, 7, 8);
COPY (SELECT k, note FROM a INTERSECT ALL SELECT k, note FROM b) TO 'conformance_intersect.csv';
SELECT k FROM a EXCEPT ALL SELECT k FROM (SELECT emp_id AS k FROM sales WHERE qty = 1) t
ORDER BY k NULLS LAST;
