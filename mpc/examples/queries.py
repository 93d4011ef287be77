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

# One query per split pass, over the demo scenarios' tables (scenario, SQL).
# `tests/test_mpc_cli.py` keeps each one's `musketeer mpc explain` output as a
# golden file (tests/mpc_golden/pass_<name>.txt) and checks the pass happened.
PASSES: dict[str, tuple[str, str]] = {
    # filter, projection and every splittable aggregate move below the union
    # of the three companies' trips: each party pre-aggregates its own rows
    "push_down": ("hhi", """
WITH trips AS (SELECT fare FROM trips_a UNION ALL SELECT fare FROM trips_b UNION ALL SELECT fare FROM trips_c)
SELECT COUNT(*) AS long_trips, AVG(fare) AS avg_fare, MAX(fare) AS max_fare, MIN(fare) AS min_fare
FROM trips WHERE fare * 2 > 50
"""),
    # the regulator may see every column the join produces, so grouping,
    # HAVING, ORDER BY and LIMIT run after the reveal, in the clear, at it
    "push_up": ("credit", """
WITH scores AS (SELECT ssn, score FROM scores_b UNION ALL SELECT ssn, score FROM scores_c)
SELECT r.zip, COUNT(s.ssn) AS people
FROM zips r JOIN scores s ON r.ssn = s.ssn
GROUP BY r.zip HAVING COUNT(s.ssn) >= 2
ORDER BY people DESC, r.zip LIMIT 5
"""),
    # SSNs are visible to the regulator: it computes the join index, MPC the rest
    "hybrid_join": ("credit", """
SELECT SUM(s.score) AS total, COUNT(*) AS matched
FROM zips r JOIN scores_b s ON r.ssn = s.ssn
WHERE r.zip < 10010
"""),
    # grouping by SSN (regulator-visible) over both banks: the regulator
    # computes the groups, MPC sums the banks' pre-aggregated scores
    "hybrid_aggregation": ("credit", """
WITH scores AS (SELECT ssn, score FROM scores_b UNION ALL SELECT ssn, score FROM scores_c)
SELECT ssn, SUM(score) AS total, COUNT(*) AS accounts FROM scores GROUP BY ssn
"""),
    # patient ids are public: the join index is computed in the clear by all,
    # the diagnoses stay secret (a WHERE on them would make the surviving ids,
    # hence the keys, private to their owner; CASE keeps it oblivious)
    "public_join": ("patients", """
SELECT COUNT(*) AS shared, SUM(CASE WHEN a.diag = 7 OR c.diag = 7 THEN 1 ELSE 0 END) AS with_diag_7
FROM visits_a a JOIN visits_c c ON a.pid = c.pid
"""),
}
