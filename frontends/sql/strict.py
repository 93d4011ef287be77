"""Nothing the user wrote is silently ignored.

sqlglot parses far more SQL than the frontend lowers, and a node's
arguments (`Select.args["qualify"]`, `Table.args["sample"]`, ...) are easy to
overlook: an ignored QUALIFY returns every row with exit code 0. So before
lowering, `check_tree` walks the qualified tree once and refuses, with a
located error quoting the user's own text,

- every node whose type is not in `ACCEPTED` (the types lowering handles), and
- every non-empty argument that is not in the node type's accepted set
  (`REFUSED` names the construct for the message).

`tests/test_sql_frontend.py` checks that every argument key sqlglot defines
for each accepted type is either accepted or refused, so a sqlglot upgrade
that adds an argument fails a test instead of being dropped.
"""

from __future__ import annotations

import re

from sqlglot import exp

from musketeer.frontends.sql.source import SourceText
from musketeer.ir.types import UnsupportedError

_BINARY = frozenset({"this", "expression"})
_UNARY = frozenset({"this"})
# Query-level clauses every set operation / SELECT / subquery may carry, with
# the construct name used in refusals.
_QUERY_REFUSED = {
    "kind": "SELECT AS STRUCT/VALUE", "hint": "query hints", "into": "SELECT ... INTO",
    "operation_modifiers": "SELECT modifiers", "exclude": "SELECT * EXCLUDE at query level",
    "match": "MATCH_RECOGNIZE", "laterals": "LATERAL", "connect": "CONNECT BY",
    "pivots": "PIVOT/UNPIVOT", "prewhere": "PREWHERE", "windows": "a named WINDOW clause",
    "distribute": "DISTRIBUTE BY", "sort": "SORT BY", "cluster": "CLUSTER BY", "locks": "FOR UPDATE/SHARE",
    "sample": "USING SAMPLE / TABLESAMPLE", "settings": "SETTINGS", "format": "FORMAT",
    "options": "OPTION (...)", "for_": "FOR XML/JSON", "by_name": "UNION BY NAME",
    "side": "a set operation with a side (LEFT UNION ...)", "on": "a set operation ON columns",
    "joins": "joins on a parenthesised query", "where": "WHERE on a parenthesised query",
    "group": "GROUP BY on a parenthesised query", "having": "HAVING on a parenthesised query",
    "qualify": "QUALIFY on a set operation or parenthesised query",
}
_SETOP_ACCEPTED = frozenset({"with_", "this", "expression", "distinct", "order", "limit", "offset"})
_SELECT_ACCEPTED = frozenset({"with_", "expressions", "distinct", "from_", "joins", "where", "group",
                              "having", "qualify", "order", "limit", "offset"})
_SUBQUERY_ACCEPTED = frozenset({"this", "alias", "with_", "order", "limit", "offset"})

#: sqlglot node type -> the argument keys lowering reads.
ACCEPTED: dict[type[exp.Expression], frozenset[str]] = {
    # queries and clauses
    exp.Select: _SELECT_ACCEPTED,
    exp.Union: _SETOP_ACCEPTED, exp.Intersect: _SETOP_ACCEPTED, exp.Except: _SETOP_ACCEPTED,
    exp.Subquery: _SUBQUERY_ACCEPTED,
    exp.Values: frozenset({"expressions", "alias"}),
    exp.With: frozenset({"expressions", "recursive"}),
    exp.CTE: frozenset({"this", "alias"}),
    exp.From: _UNARY, exp.Where: _UNARY, exp.Having: _UNARY, exp.Qualify: _UNARY,
    exp.Group: frozenset({"expressions"}),
    exp.Order: frozenset({"this", "expressions"}),  # `this`: STRING_AGG(x ORDER BY ...)
    exp.Ordered: frozenset({"this", "desc", "nulls_first"}),
    exp.Limit: frozenset({"expression"}),
    exp.Offset: frozenset({"expression"}),
    exp.Join: frozenset({"this", "on", "side", "kind", "using"}),
    exp.Table: frozenset({"this", "alias"}),
    exp.TableAlias: frozenset({"this", "columns"}),
    exp.Alias: frozenset({"this", "alias"}),
    exp.Identifier: frozenset({"this", "quoted"}),
    exp.Column: frozenset({"this", "table"}),
    exp.Star: frozenset(),
    exp.Distinct: frozenset({"expressions"}),
    # scalars
    exp.Literal: frozenset({"this", "is_string"}),
    exp.Null: frozenset(), exp.Boolean: _UNARY, exp.Var: _UNARY, exp.Paren: _UNARY,
    exp.Interval: frozenset({"this", "unit"}),
    exp.DataType: frozenset({"this", "expressions", "nested"}),
    exp.DataTypeParam: _UNARY,
    exp.Add: _BINARY, exp.Sub: _BINARY, exp.Mul: _BINARY, exp.Div: _BINARY, exp.Mod: _BINARY,
    exp.EQ: _BINARY, exp.NEQ: _BINARY, exp.LT: _BINARY, exp.LTE: _BINARY, exp.GT: _BINARY,
    exp.GTE: _BINARY, exp.And: _BINARY, exp.Or: _BINARY, exp.DPipe: frozenset({"this", "expression", "safe"}),
    exp.Not: _UNARY, exp.Neg: _UNARY,
    exp.Is: frozenset({"this", "expression"}),
    exp.Between: frozenset({"this", "low", "high"}),
    exp.In: frozenset({"this", "expressions", "query"}),
    exp.Exists: _UNARY,
    exp.Like: frozenset({"this", "expression", "negate"}), exp.ILike: frozenset({"this", "expression", "negate"}),
    exp.Case: frozenset({"this", "ifs", "default"}),
    exp.If: frozenset({"this", "true", "false"}),
    exp.Cast: frozenset({"this", "to"}), exp.TryCast: frozenset({"this", "to"}),
    exp.Extract: _BINARY,
    exp.Year: _UNARY, exp.Month: _UNARY, exp.Day: _UNARY,
    exp.Substring: frozenset({"this", "start", "length"}),
    exp.Trim: frozenset({"this", "position"}),
    exp.Upper: _UNARY, exp.Lower: _UNARY, exp.Length: _UNARY, exp.Abs: _UNARY, exp.Sqrt: _UNARY,
    exp.Ln: _UNARY, exp.Exp: _UNARY, exp.Floor: _UNARY, exp.Ceil: _UNARY,
    exp.Round: frozenset({"this", "decimals"}),
    exp.Coalesce: frozenset({"this", "expressions"}),
    exp.Concat: frozenset({"expressions", "safe", "coalesce"}),
    exp.DateAdd: frozenset({"this", "expression", "unit"}),
    exp.DateSub: frozenset({"this", "expression", "unit"}),
    # aggregates
    exp.Sum: _UNARY, exp.Avg: _UNARY, exp.Count: frozenset({"this", "big_int"}),
    exp.Min: _UNARY, exp.Max: _UNARY,
    # frontends/sql/aggregates.py
    exp.Filter: _BINARY, exp.Variance: _UNARY, exp.VariancePop: _UNARY, exp.Stddev: _UNARY,
    exp.StddevSamp: _UNARY, exp.StddevPop: _UNARY, exp.Median: _UNARY,
    exp.PercentileCont: _BINARY, exp.PercentileDisc: _BINARY, exp.Quantile: frozenset({"this", "quantile"}),
    exp.WithinGroup: _BINARY, exp.GroupConcat: frozenset({"this", "separator"}),
    # functions (frontends/sql/exprs.py: _lower_function)
    exp.Nullif: _BINARY, exp.Greatest: frozenset({"this", "expressions", "ignore_nulls"}),
    exp.Least: frozenset({"this", "expressions", "ignore_nulls"}),
    exp.TimestampTrunc: frozenset({"this", "unit"}), exp.DateTrunc: frozenset({"this", "unit"}),
    exp.Anonymous: frozenset({"this", "expressions"}),  # date_part only; others are refused by name
    exp.SplitPart: frozenset({"this", "delimiter", "part_index"}),
    exp.RegexpLike: frozenset({"this", "expression", "flag"}),
    exp.RegexpReplace: frozenset({"this", "expression", "replacement", "modifiers", "single_replace"}),
    exp.RegexpExtract: frozenset({"this", "expression", "group", "null_if_pos_overflow"}),
    exp.Pad: frozenset({"this", "expression", "fill_pattern", "is_left"}),
    exp.StartsWith: _BINARY, exp.ConcatWs: frozenset({"expressions", "safe", "coalesce"}),
    # grouping sets (frontends/sql/grouping.py)
    exp.Rollup: frozenset({"expressions"}), exp.Cube: frozenset({"expressions"}),
    exp.GroupingSets: frozenset({"expressions"}), exp.Tuple: frozenset({"expressions"}),
    exp.Grouping: frozenset({"expressions"}),
    # window functions (frontends/sql/windows.py)
    exp.Window: frozenset({"this", "partition_by", "order", "spec", "over"}),
    exp.WindowSpec: frozenset({"kind", "start", "start_side", "end", "end_side"}),
    exp.RowNumber: frozenset(), exp.Rank: frozenset(), exp.DenseRank: frozenset(),
    exp.PercentRank: frozenset(), exp.CumeDist: frozenset(), exp.Ntile: _UNARY,
    exp.Lag: frozenset({"this", "offset", "default"}), exp.Lead: frozenset({"this", "offset", "default"}),
    exp.FirstValue: _UNARY, exp.LastValue: _UNARY, exp.NthValue: frozenset({"this", "offset"}),
}

#: node type -> {argument key: construct named in the refusal}. Together with
#: ACCEPTED this covers every key of `type.arg_types` (a test checks it).
REFUSED: dict[type[exp.Expression], dict[str, str]] = {
    exp.Select: {k: v for k, v in _QUERY_REFUSED.items() if k not in _SELECT_ACCEPTED},
    **{t: {k: v for k, v in _QUERY_REFUSED.items() if k not in _SETOP_ACCEPTED}
       for t in (exp.Union, exp.Intersect, exp.Except)},
    exp.Subquery: {k: v for k, v in _QUERY_REFUSED.items() if k not in _SUBQUERY_ACCEPTED},
    exp.Values: {"order": "ORDER BY on VALUES", "limit": "LIMIT on VALUES", "offset": "OFFSET on VALUES",
                 "pivots": "PIVOT on VALUES"},
    exp.With: {"search": "WITH ... SEARCH", "cycle": "WITH ... CYCLE", "udfs": "WITH FUNCTION"},
    exp.CTE: {"scalar": "a scalar CTE", "materialized": "MATERIALIZED / NOT MATERIALIZED",
              "key_expressions": "USING KEY in a recursive CTE"},
    exp.Group: {"grouping_sets": "GROUP BY ... GROUPING SETS", "cube": "GROUP BY ... WITH CUBE",
                "rollup": "GROUP BY ... WITH ROLLUP", "totals": "WITH TOTALS",
                "all": "GROUP BY ALL"},
    exp.Order: {"siblings": "ORDER SIBLINGS BY"},
    exp.Ordered: {"with_fill": "WITH FILL"},
    exp.Limit: {"this": "LIMIT here", "offset": "LIMIT offset, count", "limit_options": "FETCH ... PERCENT/WITH TIES",
                "expressions": "LIMIT BY"},
    exp.Offset: {"this": "OFFSET here", "expressions": "OFFSET ... BY"},
    exp.Join: {"method": "NATURAL/ASOF join", "global_": "GLOBAL JOIN", "hint": "join hints",
               "match_condition": "ASOF JOIN MATCH_CONDITION", "nearest": "NEAREST join",
               "directed": "DIRECTED join", "expressions": "JOIN with a column list", "pivots": "PIVOT"},
    exp.Table: {"db": "a schema-qualified table name", "catalog": "a catalog-qualified table name",
                "laterals": "LATERAL", "joins": "joins inside a table reference", "pivots": "PIVOT/UNPIVOT",
                "hints": "table hints", "system_time": "FOR SYSTEM_TIME", "version": "time travel (AT/BEFORE)",
                "format": "a table FORMAT", "pattern": "a table PATTERN", "ordinality": "WITH ORDINALITY",
                "when": "a table WHEN clause", "only": "ONLY", "partition": "PARTITION (...) on a table",
                "changes": "CHANGES", "rows_from": "ROWS FROM", "sample": "TABLESAMPLE", "indexed": "INDEXED BY"},
    exp.Column: {"db": "a schema-qualified column", "catalog": "a catalog-qualified column",
                 "join_mark": "the (+) outer join mark", "shadow": "a shadowed column"},
    exp.Identifier: {"global_": "a GLOBAL identifier", "temporary": "a TEMPORARY identifier"},
    exp.Star: {"except_": "* EXCLUDE/EXCEPT", "replace": "* REPLACE", "rename": "* RENAME", "ilike": "* ILIKE"},
    exp.Distinct: {"on": "DISTINCT ON"},
    exp.Interval: {"fraction_in_string": "an interval with a fraction"},
    exp.DataType: {"values": "a type with values", "kind": "a type kind", "nullable": "a NULL/NOT NULL type",
                   "collate": "COLLATE"},
    exp.DataTypeParam: {"expression": "a type parameter expression"},
    exp.Div: {"typed": "typed division", "safe": "safe division"},
    exp.Mod: {"safe": "safe modulo"},
    exp.Is: {"negate": "IS NOT DISTINCT FROM"},
    exp.Between: {"symmetric": "BETWEEN SYMMETRIC"},
    exp.In: {"unnest": "IN UNNEST(...)", "field": "IN a field", "is_global": "GLOBAL IN"},
    exp.Exists: {"expression": "EXISTS with an expression"},
    exp.Cast: {"format": "CAST ... FORMAT", "safe": "a safe CAST", "action": "CAST ... action",
               "default": "CAST ... DEFAULT ... ON CONVERSION ERROR"},
    exp.TryCast: {"format": "TRY_CAST ... FORMAT", "safe": "a safe TRY_CAST", "action": "TRY_CAST action",
                  "default": "TRY_CAST DEFAULT", "requires_string": "TRY_CAST requiring a string",
                  "null_on_text_overflow": "TRY_CAST on text overflow",
                  "probe_date_format": "TRY_CAST with a date format"},
    exp.Substring: {"zero_start": "zero-based SUBSTRING"},
    exp.Trim: {"expression": "TRIM of specific characters", "collation": "TRIM ... COLLATE"},
    exp.Length: {"binary": "LENGTH of bytes", "encoding": "LENGTH with an encoding"},
    exp.Floor: {"decimals": "FLOOR with decimals", "to": "FLOOR to a unit"},
    exp.Ceil: {"decimals": "CEIL with decimals", "to": "CEIL to a unit"},
    exp.Round: {"truncate": "ROUND with truncation", "casts_non_integer_decimals": "ROUND with cast decimals"},
    exp.Coalesce: {"is_nvl": "NVL", "is_null": "ISNULL"},
    exp.Count: {"expressions": "COUNT over several arguments"},
    exp.GroupConcat: {"on_overflow": "STRING_AGG ... ON OVERFLOW"},
    exp.TimestampTrunc: {"zone": "DATE_TRUNC with a time zone", "input_type_preserved": "DATE_TRUNC keeping the type"},
    exp.DateTrunc: {"zone": "DATE_TRUNC with a time zone", "input_type_preserved": "DATE_TRUNC keeping the type"},
    exp.SplitPart: {"part_index_zero_as_one": "SPLIT_PART with part 0 as 1",
                    "empty_delimiter_returns_whole": "SPLIT_PART's empty-delimiter rule"},
    exp.RegexpLike: {"full_match": "a full-match regular expression"},
    exp.RegexpReplace: {"position": "REGEXP_REPLACE from a position", "occurrence": "REGEXP_REPLACE of one occurrence"},
    exp.RegexpExtract: {"position": "REGEXP_EXTRACT from a position", "occurrence": "REGEXP_EXTRACT occurrence",
                        "parameters": "REGEXP_EXTRACT options",
                        "null_if_no_match": "REGEXP_EXTRACT NULL on no match",
                        "empty_if_group_missing": "REGEXP_EXTRACT empty-group rule"},
    exp.ConcatWs: {"flatten": "CONCAT_WS over arrays"},
    exp.Max: {"expressions": "MAX over several arguments", "count": "MAX(x, n)"},
    exp.Min: {"expressions": "MIN over several arguments", "count": "MIN(x, n)"},
    exp.Window: {"alias": "a named window (OVER w)", "first": "FIRST/LAST in a window"},
    exp.WindowSpec: {"exclude": "EXCLUDE in a window frame"},
    exp.RowNumber: {"this": "ROW_NUMBER with an argument"}, exp.Rank: {"expressions": "RANK with arguments"}, exp.DenseRank: {"expressions": "DENSE_RANK with arguments"},
    exp.PercentRank: {"expressions": "PERCENT_RANK with arguments"},
    exp.CumeDist: {"expressions": "CUME_DIST with arguments"},
    exp.NthValue: {"from_first": "NTH_VALUE ... FROM FIRST/LAST"},
}

#: Names for node types without a user-visible function name.
_NODE_NAMES = {
    exp.Window: "window function", exp.Values: "VALUES", exp.Lateral: "LATERAL", exp.Unnest: "UNNEST",
    exp.Bracket: "subscript", exp.Struct: "struct", exp.Array: "array", exp.Lambda: "lambda",
    exp.Tuple: "row value", exp.Pivot: "PIVOT", exp.TableSample: "TABLESAMPLE", exp.Placeholder: "parameter",
    exp.Parameter: "parameter", exp.Dot: "field access", exp.IntDiv: "integer division //",
}


_KEYWORD_CLAUSES = (exp.TableSample, exp.Var, exp.Lock, exp.Hint)


def _present(value: object) -> bool:
    return value not in (None, False, "", [])


def _span(node: exp.Expression) -> tuple[int, int] | None:
    starts, ends = [], []
    for n in node.walk():
        meta = n.meta if n.meta else {}
        if meta.get("start") is not None:
            starts.append(meta["start"])
            ends.append(meta.get("end", meta["start"]))
    return (min(starts), max(ends)) if starts else None


def user_text(node: exp.Expression, src: SourceText, limit: int = 120) -> str:
    """The user's own text for `node`, from its first recorded token to the
    end of its balanced parentheses (sqlglot records offsets on identifiers,
    literals and some function names only; the rest is recovered from the
    text). Falls back to sqlglot's DuckDB rendering."""
    span = _span(node)
    if span is None:
        return node.sql(dialect="duckdb")[:limit]
    start, end = span
    text = src.text
    # A function call whose name token was not recorded: `name(` before the first argument.
    if isinstance(node, (exp.Func, exp.Window)) and not (node.meta or {}).get("start"):
        start = src.call_start(start)
    depth, i, quote = 0, start, ""
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                break
            depth -= 1
        if i >= end and depth == 0 and not quote:
            # keep a call's parenthesised tail (`OVER (...)`) that starts right here
            rest = text[i + 1:]
            m = re.match(r"\s*(OVER\s*)?\(", rest, re.IGNORECASE) if isinstance(node, (exp.Func, exp.Window)) else None
            if not m:
                i += 1
                break
        i += 1
    snippet = " ".join(text[start:i].split())
    if len(snippet) > limit:
        snippet = snippet[:limit].rstrip() + " ..."
    return snippet


def function_name(node: exp.Expression, src: SourceText) -> str:
    """The name the user wrote for a function call (STRING_AGG, not GROUP_CONCAT)."""
    text = user_text(node, src, limit=10_000)
    m = re.match(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*\(", text)
    if m:
        return m.group(1).upper()
    return node.sql_name() if isinstance(node, exp.Func) else node.key.upper()


def describe(node: exp.Expression, src: SourceText) -> str:
    """`NAME (user text)` for a refusal message."""
    text = user_text(node, src)
    if isinstance(node, exp.Window):
        return f"window function {text}"
    if isinstance(node, exp.AggFunc):
        return f"aggregate {function_name(node, src)} in {text}"
    if isinstance(node, exp.Func):
        return f"function {function_name(node, src)} in {text}"
    name = _NODE_NAMES.get(type(node), node.key.upper())
    return f"{name} ({text})" if text and text.upper() != name.upper() else name


def refuse_node(node: exp.Expression, src: SourceText) -> UnsupportedError:
    return UnsupportedError(describe(node, src), src.loc_of(node))


def check_tree(root: exp.Expression, src: SourceText) -> None:
    """Refuse the first node or argument lowering would not read."""
    for node in root.walk():
        accepted = ACCEPTED.get(type(node))
        if accepted is None:
            raise refuse_node(node, src)
        for key, value in node.args.items():
            if key in accepted or not _present(value):
                continue
            what = REFUSED.get(type(node), {}).get(key, f"{key!r} of {node.key.upper()}")
            at = value if isinstance(value, exp.Expression) else (
                value[0] if isinstance(value, list) and value and isinstance(value[0], exp.Expression) else node)
            loc = src.loc_of(at) or src.loc_of(node)
            if isinstance(at, _KEYWORD_CLAUSES) or at is node:
                raise UnsupportedError(what, loc)  # sqlglot keeps no offsets for the clause's keywords
            raise UnsupportedError(f"{what} ({user_text(at, src)})", loc)
