SELECT DISTINCT dept_id, active FROM emp ORDER BY dept_id NULLS LAST, active NULLS LAST;
