"""The three demo queries (also used by tests and the benchmark)."""

HHI = """
WITH trips AS (
  SELECT 1 AS company, fare FROM trips_a
  UNION ALL SELECT 2 AS company, fare FROM trips_b
  UNION ALL SELECT 3 AS company, fare FROM trips_c
), revenue AS (SELECT company, SUM(fare) AS rev FROM trips GROUP BY company),
total AS (SELECT SUM(rev) AS total FROM revenue)
SELECT SUM((100.0 * rev / total) * (100.0 * rev / total)) AS hhi FROM revenue CROSS JOIN total
"""

CREDIT = """
WITH scores AS (SELECT ssn, score FROM scores_b UNION ALL SELECT ssn, score FROM scores_c)
SELECT r.zip, AVG(s.score) AS avg_score
FROM zips r JOIN scores s ON r.ssn = s.ssn
GROUP BY r.zip ORDER BY r.zip
"""

PATIENTS = """
SELECT COUNT(*) AS patients
FROM visits_a a JOIN visits_b b ON a.pid = b.pid JOIN visits_c c ON b.pid = c.pid
WHERE a.diag = 7 OR b.diag = 7 OR c.diag = 7
"""
