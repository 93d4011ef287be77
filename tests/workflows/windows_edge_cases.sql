-- Window edge cases: frames that are empty at the partition edges, NTILE
-- with more buckets than rows, NTH_VALUE past the frame, GROUPS to the end,
-- RANGE offsets under a DESC order with NULL keys, COUNT(DISTINCT) over a
-- frame, windows over an empty input (the UNION ALL's second branch).
SELECT
    id,
    sum(amount) OVER (PARTITION BY emp_id ORDER BY id ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING) AS prev_two,
    ntile(30) OVER (ORDER BY id) AS many_buckets,
    nth_value(note, 3) OVER (PARTITION BY emp_id ORDER BY id) AS third_note,
    count(*) OVER (ORDER BY qty GROUPS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS groups_to_end,
    sum(qty) OVER (ORDER BY amount DESC RANGE BETWEEN 50 PRECEDING AND 10 FOLLOWING) AS near_amount_desc,
    count(DISTINCT note) OVER (ORDER BY id ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS distinct_notes,
    max(day) OVER (PARTITION BY emp_id) AS last_day,
    avg(qty) OVER (PARTITION BY emp_id ORDER BY day NULLS FIRST) AS running_qty
FROM (SELECT row_number() OVER (ORDER BY emp_id NULLS FIRST, day NULLS FIRST, amount NULLS FIRST, note) AS id, *
      FROM sales) s
UNION ALL
SELECT id, sum(salary) OVER (ORDER BY id), 1, name, count(*) OVER (), NULL, NULL, NULL, NULL
FROM emp WHERE id < 0
ORDER BY id;
