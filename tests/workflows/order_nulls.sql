SELECT id, salary, hired
FROM emp
ORDER BY salary DESC NULLS FIRST, hired ASC NULLS LAST, id;
