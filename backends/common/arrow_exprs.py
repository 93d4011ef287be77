"""Compile IR scalar expressions into Python source over pyarrow.compute.

Shared by the engines whose relations are pandas DataFrames of pyarrow-backed
columns: the local engine applies the compiled text to a whole relation, the
dask engine to each partition. The compiled text is one Python expression
that evaluates, inside the generated program, to a `pyarrow.ChunkedArray`
(or a `pyarrow.Scalar` when no column is involved; callers broadcast). We use pyarrow.compute rather
than pandas operators because it gives SQL semantics directly: NULLs
propagate, AND/OR are Kleene, and the kernels are vectorised C++.

Everything taken from the user (column names, string literals, patterns)
reaches the program text through `repr()`, never by pasting raw text.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from musketeer.ir import expr as E
from musketeer.ir.schema import Schema
from musketeer.ir.types import BOOL, INT64, STRING, TIMESTAMP, DataType, UnsupportedError

from musketeer.backends.common.expr_compiler import BaseExprCompiler, constant_bounds, round_digits
from musketeer.backends.common.sql_semantics import add_months, like_plan, slice_bounds
from musketeer.backends.common.values import NO_FOLD as _NO_FOLD
from musketeer.backends.common.values import fold_cast as _fold_cast
from musketeer.backends.common.values import physical_kind as _kind
from musketeer.backends.common.values import engine_type, python_literal

__all__ = ["ExprCompiler", "add_months", "arrow_type", "like_plan", "python_literal", "slice_bounds"]

# IR type kind -> pyarrow type constructor, as program text.
_ARROW_TYPES = {
    "int64": "pa.int64()",
    "float64": "pa.float64()",
    "decimal": "pa.float64()",  # decimals run as doubles in this engine
    "bool": "pa.bool_()",
    "string": "pa.string()",
    "date": "pa.date32()",
    "timestamp": 'pa.timestamp("us")',
    "null": "pa.null()",
}

#: Functions computed row by row by a helper `<name>_row` (arrow_functions.py.j2).
_ROWWISE = ("regexp_matches", "regexp_replace", "regexp_replace_all", "regexp_extract", "split_part", "lpad", "rpad")

_COMPARE_FUNCS = {"=": "equal", "<>": "not_equal", "<": "less", "<=": "less_equal",
                  ">": "greater", ">=": "greater_equal"}
_ARITH_FUNCS = {"+": "add_checked", "-": "subtract_checked", "*": "multiply_checked"}
_EXTRACT_FUNCS = {"year": "year", "quarter": "quarter", "month": "month", "day": "day",
                  "doy": "day_of_year", "hour": "hour", "minute": "minute", "second": "second"}
# One-argument functions: program text with {0} for the argument. SQL TRIM
# strips spaces only (not tabs or newlines); sqrt/ln raise on bad input, as DuckDB does.
_UNARY_FUNCS = {
    "upper": "pc.utf8_upper({0})",
    "lower": "pc.utf8_lower({0})",
    "trim": 'pc.utf8_trim({0}, characters=" ")',
    "ltrim": 'pc.utf8_ltrim({0}, characters=" ")',
    "rtrim": 'pc.utf8_rtrim({0}, characters=" ")',
    "length": "pc.cast(pc.utf8_length({0}), pa.int64())",
    "abs": "pc.abs_checked({0})",
    "sqrt": "pc.sqrt_checked({0})",
    "ln": "pc.ln_checked({0})",
    "exp": "pc.exp({0})",
}


def arrow_type(t: DataType) -> str:
    """Program text constructing the pyarrow type that holds IR type `t`."""
    return engine_type(t, _ARROW_TYPES, "pandas/pyarrow engines")


class ExprCompiler(BaseExprCompiler[str]):
    """Compiles expressions over one relation held in the frame variable `frame`.

    `need(name)` records which runtime helpers the compiled text calls, so
    the program includes only those.
    """

    ENGINE = "pandas/pyarrow engines"

    def __init__(self, frame: str, schema: Schema, need: Callable[[str], None]) -> None:
        super().__init__(schema, need)
        self.frame = frame

    # --- entry point ----------------------------------------------------------
    def compile(self, e: E.Expr, want: DataType | None = None) -> str:
        """Source for `e`; `want` asks for a value of that type (casting if needed)."""
        return self.code(e, want)

    # --- small emitters -------------------------------------------------------
    def null(self, t: DataType) -> str:
        return f"pa.scalar(None, {arrow_type(t)})"

    def _constant(self, value: object, kind: str, t: DataType) -> str:
        """Typed so pyarrow never guesses."""
        text = python_literal(value)
        if kind in ("string", "float64", "bool", "int64") or (kind == "date" and type(value) is dt.date):
            return text  # pyarrow infers exactly these types from the Python value
        return f"pa.scalar({text}, {arrow_type(t)})"

    def _convert(self, code: str, src: DataType, dst: DataType) -> str:
        """A cast with SQL (DuckDB) rules where pyarrow's differ."""
        s, d = _kind(src), _kind(dst)
        if d == "int64" and s == "float64":
            # DuckDB rounds (pyarrow would refuse to truncate): doubles half to
            # even, decimals half away from zero.
            mode = "half_towards_infinity" if src.kind == "decimal" else "half_to_even"
            return f'pc.cast(pc.round({code}, round_mode="{mode}"), pa.int64())'
        if dst.kind == "decimal":
            inner = code if s == "float64" else f"pc.cast({code}, pa.float64())"
            return f'pc.round({inner}, {dst.scale or 0}, round_mode="half_towards_infinity")'
        if s == "float64" and src.kind != "decimal" and d == "string":
            self.need("float_text")
            return f"float_text({code})"
        if s == "timestamp" and d == "date":
            return f"pc.cast({code}, pa.date32(), safe=False)"
        if s == d:
            return code
        return f"pc.cast({code}, {arrow_type(dst)})"

    def _fits(self, code: str, dst: DataType, label: str) -> str:
        self.need("decimal_fits")
        limit = 10 ** ((dst.precision or 18) - (dst.scale or 0))
        return f"decimal_fits({code}, {limit}, {label!r}, {str(dst)!r})"

    def _parse(self, code: str, dst: DataType, label: str) -> str:
        """Strings to `dst` by the runtime's cast_text: a value that does not
        convert is one InputDataError naming `label` and the value."""
        self.need("cast_text")
        # per row, so a constant that does not convert fails only if some row reaches it (as in DuckDB)
        code = f"as_array({code}, len({self.frame}), pa.string())"
        if dst.kind == "decimal":  # as doubles (the engine's decimals), rounded to the scale
            inner = f"cast_text({code}, pa.float64(), {label!r}, {str(dst)!r})"
            return f'pc.round({inner}, {dst.scale or 0}, round_mode="half_towards_infinity")'
        return f"cast_text({code}, {arrow_type(dst)}, {label!r}, {str(dst)!r})"

    def _shift(self, base: E.Expr, bt: DataType, months: int, days: int) -> str:
        self.need("add_interval")
        return f"add_interval({self.compile(base)}, months={months}, days={days})"

    # --- one method per expression class -------------------------------------
    def _col(self, e: E.Col, t: DataType) -> str:
        self.need("col")
        return f"col({self.frame}, {e.name!r})"

    def _arith(self, e: E.Arith, t: DataType) -> str:
        lt, rt = self.type_of(e.left), self.type_of(e.right)
        if lt.kind == "interval" or rt.kind == "interval":
            return self._interval_arith(e, lt, rt)
        if e.op == "-" and lt.kind == "date" and rt.kind == "date":
            return f"pc.days_between({self.compile(e.right)}, {self.compile(e.left)})"
        left, right = self.compile(e.left), self.compile(e.right)
        if e.op == "/":
            # SQL '/' here is true division; doubles follow IEEE (x/0 = inf), as DuckDB does.
            if _kind(lt) != "float64" and _kind(rt) != "float64":
                left = f"pc.cast({left}, pa.float64())"
            return f"pc.divide({left}, {right})"
        if e.op == "%":
            if _kind(t) == "int64":
                self.need("int_mod")
                return f"int_mod({left}, {right})"
            self.need("float_mod")
            return f"float_mod({left}, {right})"
        return f"pc.{_ARITH_FUNCS[e.op]}({left}, {right})"

    def _compare(self, e: E.Compare, t: DataType) -> str:
        left, right = self._comparable(e.left, e.right)
        return f"pc.{_COMPARE_FUNCS[e.op]}({left}, {right})"

    def _and(self, e: E.And, t: DataType) -> str:
        return self._fold_logic("pc.and_kleene", e.args)

    def _or(self, e: E.Or, t: DataType) -> str:
        return self._fold_logic("pc.or_kleene", e.args)

    def _fold_logic(self, func: str, args: tuple[E.Expr, ...]) -> str:
        code = self.compile(args[0], BOOL)
        for a in args[1:]:
            code = f"{func}({code}, {self.compile(a, BOOL)})"
        return code

    def _not(self, e: E.Not, t: DataType) -> str:
        return f"pc.invert({self.compile(e.arg, BOOL)})"

    def _neg(self, e: E.Neg, t: DataType) -> str:
        return f"pc.negate_checked({self.compile(e.arg)})"

    def _isnull(self, e: E.IsNull, t: DataType) -> str:
        at = self.type_of(e.arg)
        if at.kind == "null":
            return "False" if e.negated else "True"
        return f"pc.{'is_valid' if e.negated else 'is_null'}({self.compile(e.arg)})"

    def _inlist(self, e: E.InList, t: DataType) -> str:
        at = self.type_of(e.arg)
        if at.kind == "null":
            return self.null(BOOL)
        literals = [v for v in e.values if isinstance(v, E.Lit)]
        if len(literals) == len(e.values):
            code = self._in_constants(e.arg, at, literals)
        else:
            # Non-constant list: x = v1 OR x = v2 ... gives exactly SQL's NULL rules.
            tests = [f"pc.equal({a}, {b})" for a, b in (self._comparable(e.arg, v) for v in e.values)]
            code = tests[0]
            for test in tests[1:]:
                code = f"pc.or_kleene({code}, {test})"
        return f"pc.invert({code})" if e.negated else code

    def _in_constants(self, arg: E.Expr, at: DataType, literals: list[E.Lit]) -> str:
        """x IN (constants): one hash lookup (pc.is_in) rather than a chain of ORs."""
        target = self._in_type(at, literals)
        values = []
        for lit in literals:
            if lit.value is not None:
                folded = _fold_cast(lit.value, _kind(lit.dtype), target)
                values.append(python_literal(lit.value if folded is _NO_FOLD else folded))
        has_null = len(values) < len(literals)
        self.need("in_list")
        return (f"in_list({self.compile(arg, target)}, pa.array([{', '.join(values)}], {arrow_type(target)}), "
                f"has_null={has_null})")

    def _like(self, e: E.Like, t: DataType) -> str:
        arg = self.compile(e.arg)
        kernel, pattern = like_plan(e.pattern, regex_only=e.case_insensitive and "%" not in e.pattern)
        ci = ", ignore_case=True" if e.case_insensitive else ""
        if kernel == "any":  # '%' matches every non-NULL string
            code = f"pc.if_else(pc.is_valid({arg}), True, {self.null(BOOL)})"
        elif kernel == "equal":
            code = f"pc.equal({arg}, {pattern!r})"
        else:
            code = f"pc.{kernel}({arg}, {pattern!r}{ci})"
        return f"pc.invert({code})" if e.negated else code

    def _case(self, e: E.Case, t: DataType) -> str:
        self.need("case_when")
        whens = ", ".join(f"({self.compile(c, BOOL)}, {self.compile(v, t)})" for c, v in e.whens)
        default = self.compile(e.default, t) if e.default is not None else self.null(t)
        return f"case_when([{whens}], {default})"

    def _extract(self, e: E.Extract, t: DataType) -> str:
        at = self.type_of(e.arg)
        arg = self.compile(e.arg)
        if e.part == "dow":  # Sunday = 0, as in DuckDB and PostgreSQL
            return f"pc.day_of_week({arg}, count_from_zero=True, week_start=7)"
        if e.part in ("hour", "minute", "second") and at.kind == "date":
            arg = f'pc.cast({arg}, pa.timestamp("us"))'
        if e.part not in _EXTRACT_FUNCS:
            raise UnsupportedError(f"EXTRACT({e.part.upper()} ...)")
        return f"pc.{_EXTRACT_FUNCS[e.part]}({arg})"

    # --- functions ------------------------------------------------------------
    def _func(self, e: E.Func, t: DataType) -> str:
        name = e.name
        types = [self.type_of(a) for a in e.args]
        if name == "coalesce":
            args = [self.compile(a, t) for a, at in zip(e.args, types) if at.kind != "null"]
            return args[0] if len(args) == 1 else f"pc.coalesce({', '.join(args)})"
        if name == "single_value":
            self.need("single_value")
            return f"single_value({self.compile(e.args[0], INT64)}, {self.compile(e.args[1], t)})"
        if name == "concat_ws":  # NULL arguments are skipped; a NULL separator gives NULL
            if types[0].kind == "null":
                return self.null(t)
            parts = [self.compile(a, STRING) for a, at in zip(e.args[1:], types[1:]) if at.kind != "null"]
            sep = self.compile(e.args[0], STRING)
            if len(parts) < 2:  # (pyarrow's join drops the NULL rows of a single array)
                value = f'pc.coalesce({parts[0]}, "")' if parts else 'pa.scalar("", pa.string())'
                return f"pc.if_else(pc.is_null({sep}), pa.scalar(None, pa.string()), {value})"
            return f'pc.binary_join_element_wise({", ".join(parts)}, {sep}, null_handling="skip")'
        if name == "concat":  # the IR's concat is SQL's `||`: NULL if any argument is NULL
            if any(at.kind == "null" for at in types):
                return self.null(t)
            args = [self.compile(a, STRING) for a in e.args]
            return f'pc.binary_join_element_wise({", ".join(args)}, "", null_handling="emit_null")'
        if any(at.kind == "null" for at in types):
            return self.null(t)  # every other function is NULL on a NULL argument
        args = [self.compile(a) for a in e.args]
        if name in _UNARY_FUNCS:
            return _UNARY_FUNCS[name].format(args[0])
        if name == "substring":
            return self._substring(e, args)
        if name == "round":
            # DuckDB rounds half away from zero, for doubles as for decimals
            code = f'pc.round({args[0]}, {round_digits(e)}, round_mode="half_towards_infinity")'
            return code if _kind(types[0]) == "float64" else f"pc.cast({code}, pa.int64())"
        if name in ("floor", "ceil"):
            return f"pc.{name}({args[0]})" if _kind(types[0]) == "float64" else args[0]
        if name.startswith("date_trunc_"):
            unit = name[len("date_trunc_"):]
            value = self.compile(e.args[0], TIMESTAMP)
            return f"pc.floor_temporal({value}, unit={unit!r}, week_starts_monday=True)"
        constants = [a.value if isinstance(a, E.Lit) else None for a in e.args]
        if name == "regexp_matches" and isinstance(constants[1], str):
            return f"pc.match_substring_regex({args[0]}, pattern={constants[1]!r})"
        if name in ("regexp_replace", "regexp_replace_all") and isinstance(constants[1], str) \
                and isinstance(constants[2], str) and "$" not in constants[2]:
            most = ", max_replacements=1" if name == "regexp_replace" else ""
            return (f"pc.replace_substring_regex({args[0]}, pattern={constants[1]!r}, "
                    f"replacement={constants[2]!r}{most})")
        if name in _ROWWISE:
            self.need("rowwise")
            return f"rowwise({name}_row, {arrow_type(t)}, {', '.join(args)})"
        raise UnsupportedError(f"function {name}() in the pandas/pyarrow engines")

    def _substring(self, e: E.Func, args: list[str]) -> str:
        bounds = constant_bounds(e)
        if bounds is not None:
            lo, hi = slice_bounds(*bounds)
            stop = "" if hi is None else f", stop={hi}"
            return f"pc.utf8_slice_codeunits({args[0]}, start={lo}{stop})"
        self.need("substring")  # per-row start or length
        length = args[2] if len(args) > 2 else "None"
        return f"substring({args[0]}, {args[1]}, {length})"
