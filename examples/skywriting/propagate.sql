-- One round of label propagation: each vertex takes the smallest label
-- among itself and its neighbours.
SELECT l.v AS v,
       CASE WHEN MIN(n.label) < l.label THEN MIN(n.label) ELSE l.label END AS label
FROM labels l
LEFT JOIN edges e ON e.dst = l.v
LEFT JOIN labels n ON n.v = e.src
GROUP BY l.v, l.label
ORDER BY v
