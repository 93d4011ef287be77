"""SQL rules worked out at generation time, whatever engine runs the program.

These are pure functions over constants (LIKE patterns, SUBSTRING bounds,
calendar-month arithmetic on literal dates), so every backend evaluates
them the same way and the generated code stays simple.
"""

from __future__ import annotations

import datetime as dt


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar month arithmetic, clamping to the month's last day (Jan 31 + 1 month = Feb 29/28)."""
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    next_first = dt.date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_first - dt.timedelta(days=1)).day
    return day.replace(year=year, month=month, day=min(day.day, last_day))


def like_regex(pattern: str) -> str:
    """An anchored RE2/Python regex matching exactly what SQL LIKE `pattern` matches.

    '%' is any run of characters (newlines too), '_' exactly one; there is no
    escape character (DuckDB's default), so backslash is an ordinary character.
    """
    regex = []
    for ch in pattern:
        if ch == "%":
            regex.append(".*")
        elif ch == "_":
            regex.append(".")
        elif ch in "\\.^$|?*+()[]{}":
            regex.append("\\" + ch)
        else:
            regex.append(ch)
    return "(?s)^" + "".join(regex) + "$"


def like_plan(pattern: str, regex_only: bool = False) -> tuple[str, str]:
    """How to evaluate a LIKE pattern: the cheapest string test that fits.

    Returns (test, argument): 'any' ('%': every non-NULL string), 'equal'
    for no wildcards, 'starts_with' for 'abc%', 'ends_with' for '%abc',
    'match_substring' for '%abc%', otherwise 'match_substring_regex' with
    `like_regex(pattern)` (always, with `regex_only`, e.g. for
    case-insensitive equality). The names are pyarrow.compute's kernels;
    other engines map them onto their own.
    """
    if "_" not in pattern and not regex_only:
        inner = pattern.strip("%")
        if "%" not in inner:
            starts, ends = pattern.startswith("%"), pattern.endswith("%")
            if not inner and (starts or ends):
                return ("any", "")
            if starts and ends:
                return ("match_substring", inner)
            if ends:
                return ("starts_with", inner)
            if starts:
                return ("ends_with", inner)
            return ("equal", inner)
    return ("match_substring_regex", like_regex(pattern))


def slice_bounds(start: int, length: int | None) -> tuple[int, int | None]:
    """Python-style (start, stop) code-unit bounds for SQL SUBSTRING(s, start, length).

    SQL positions are 1-based; DuckDB counts a negative start from the end,
    and a negative length takes the characters before `start`.
    """
    if length is None:
        return (start - 1 if start > 0 else start, None)
    if start > 0:
        begin = start - 1
        if length >= 0:
            return (begin, begin + length)
        return (max(begin + length, 0), begin)
    if start == 0:
        return (0, max(length - 1, 0)) if length >= 0 else (0, 0)
    # negative start: both ends relative to the end of each string
    if length >= 0:
        stop = start + length
        return (start, None if stop >= 0 else stop)
    return (start + length, start)
