-- VALUES as a table (typed by the common type of each column, NULLs
-- included) joined with data, SELECT without FROM, and VALUES as a query.
CREATE TABLE bands AS
SELECT * FROM (VALUES (1, 'low', 0.0), (2, 'mid', 4000), (3, 'high', 6000.5), (4, NULL, NULL)) AS b(band, label, floor_salary);

CREATE TABLE constants AS SELECT 2 + 3 AS five, 'x' || 'y' AS xy, DATE '2020-02-28' + 2 AS d;

SELECT e.id, b.band, b.label, c.five, c.xy, c.d
FROM emp e, bands b, constants c
WHERE e.salary >= b.floor_salary
  AND NOT EXISTS (SELECT 1 FROM bands b2 WHERE b2.floor_salary > b.floor_salary AND e.salary >= b2.floor_salary)
ORDER BY e.id;
