SELECT d.dname, r.region
FROM dept d CROSS JOIN (SELECT DISTINCT region FROM dept WHERE region IS NOT NULL) r
WHERE d.id IS NOT NULL
ORDER BY d.dname, r.region;
