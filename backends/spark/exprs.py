"""Compile IR scalar expressions into PySpark Column expressions (program text).

The compiled text is one Python expression that builds a
`pyspark.sql.Column` from `F.col(...)`, Python operators and
`pyspark.sql.functions`, so Spark's optimizer sees plain Catalyst
expressions (never a per-row Python UDF) and whole-stage code generation
applies. Spark already gives SQL NULL semantics (NULLs propagate, AND/OR
are Kleene, comparisons with NULL are NULL); where Spark's rules differ from
DuckDB's (division by zero, casts of doubles to integers, SUBSTRING with
start <= 0, EXTRACT(DOW)) the compiled text says so explicitly.

Everything taken from the user (column names, string literals, patterns)
reaches the program text through `repr()`, never by pasting raw text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from musketeer.backends.common.expr_compiler import (
    BaseExprCompiler,
    constant_bounds,
    round_digits,
)
from musketeer.backends.common.sql_semantics import slice_bounds
from musketeer.backends.common.values import (
    engine_type,
    physical_kind,
    python_literal,
)
from musketeer.ir import expr as E
from musketeer.ir.types import (
    BOOL,
    TIMESTAMP,
    STRING,
    DataType,
    UnsupportedError,
)

ENGINE = "Spark engine"

# IR type kind -> Spark SQL type name (for Column.cast). Decimals run as doubles.
CAST_TYPES = {
    "int64": "bigint",
    "float64": "double",
    "decimal": "double",
    "bool": "boolean",
    "string": "string",
    "date": "date",
    "timestamp": "timestamp_ntz",  # IR timestamps carry no time zone
    "null": "void",
}
# IR type kind -> pyspark.sql.types constructor (for schemas), as program text.
SCHEMA_TYPES = {
    "int64": "T.LongType()",
    "float64": "T.DoubleType()",
    "decimal": "T.DoubleType()",
    "bool": "T.BooleanType()",
    "string": "T.StringType()",
    "date": "T.DateType()",
    "timestamp": "T.TimestampNTZType()",
    "null": "T.NullType()",
}

_COMPARE_OPS = {"=": "==", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_EXTRACT_FUNCS = {"year": "F.year", "quarter": "F.quarter", "month": "F.month", "day": "F.dayofmonth",
                  "doy": "F.dayofyear", "hour": "F.hour", "minute": "F.minute", "second": "F.second"}
# One-argument functions whose Spark meaning is the SQL one. Spark's trim
# strips spaces only, as SQL's does.
_UNARY_FUNCS = {"upper": "F.upper", "lower": "F.lower", "trim": "F.trim", "ltrim": "F.ltrim",
                "rtrim": "F.rtrim", "abs": "F.abs", "sqrt": "F.sqrt", "ln": "F.log", "exp": "F.exp"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_INT = 2147483647  # "to the end of the string" as a Spark SUBSTRING length


def cast_type(t: DataType) -> str:
    """Spark SQL type name for IR type `t`, as used in `Column.cast(...)`."""
    return engine_type(t, CAST_TYPES, ENGINE)


def schema_type(t: DataType) -> str:
    """Program text constructing the pyspark.sql.types type for IR type `t`."""
    return engine_type(t, SCHEMA_TYPES, ENGINE)


def column_name(name: str) -> str:
    """The string F.col() needs to mean exactly column `name`: plain
    identifiers as they are, anything else quoted in backticks (so dots,
    spaces and quotes are part of the name, not struct access)."""
    return name if _IDENTIFIER.fullmatch(name) else "`" + name.replace("`", "``") + "`"


def col_ref(name: str) -> str:
    """Program text for a reference to column `name`."""
    return f"F.col({column_name(name)!r})"


@dataclass(frozen=True)
class Code:
    """Compiled text. `literal`: a bare Python constant, not yet a Column
    (Python operators with a Column on the other side lift it); `atom`: safe
    as an operand or before `.method()` without parentheses."""

    text: str
    literal: bool = False
    atom: bool = True


class ExprCompiler(BaseExprCompiler[Code]):
    """Compiles expressions over one relation with schema `schema`.

    `need(name)` records which runtime helpers the compiled text calls, so
    the program includes only those.
    """

    ENGINE = ENGINE

    # --- entry point ----------------------------------------------------------
    def compile(self, e: E.Expr, want: DataType | None = None) -> str:
        """Column text for `e`; `want` asks for a value of that type (casting if needed)."""
        return self.column(self.code(e, want)).text

    # --- small emitters -------------------------------------------------------
    @staticmethod
    def column(code: Code) -> Code:
        """`code` as a Column (a bare constant goes through F.lit)."""
        return Code(f"F.lit({code.text})") if code.literal else code

    @staticmethod
    def operand(code: Code) -> str:
        return code.text if code.atom else f"({code.text})"

    def method(self, code: Code, call: str) -> Code:
        """`code.<call>`, e.g. method(x, "isNull()")."""
        return Code(f"{self.operand(self.column(code))}.{call}")

    def null(self, t: DataType) -> Code:
        if t.kind == "null":
            return Code("F.lit(None)")
        return Code(f"F.lit(None).cast({cast_type(t)!r})")

    def _constant(self, value: object, kind: str, t: DataType) -> Code:
        """A bare Python value (Spark types it from the value)."""
        if kind == "timestamp" and type(value) is dt.date:
            value = dt.datetime(value.year, value.month, value.day)
        text = python_literal(value)
        return Code(text, literal=True, atom=not text.startswith("-"))

    def binary(self, left: Code, op: str, right: Code) -> Code:
        """`left op right` with Python operators; one side must be a Column."""
        if left.literal and right.literal:
            left = self.column(left)
        return Code(f"{self.operand(left)} {op} {self.operand(right)}", atom=False)

    def _convert(self, code: Code, src: DataType, dst: DataType) -> Code:
        """A cast with SQL (DuckDB) rules where Spark's differ."""
        s, d = physical_kind(src), physical_kind(dst)
        if d == "int64" and s == "float64":
            # Spark truncates; DuckDB rounds doubles half to even, decimals half away from zero.
            rounding = "F.round" if src.kind == "decimal" else "F.bround"
            return self.method(Code(f"{rounding}({self.column(code).text})"), "cast('bigint')")
        if dst.kind == "decimal":
            inner = code if s == "float64" else self.method(code, "cast('double')")
            return Code(f"F.round({self.column(inner).text}, {dst.scale or 0})")
        if s == d:
            return code
        return self.method(code, f"cast({cast_type(dst)!r})")

    def _fits(self, code: Code, dst: DataType, label: str) -> Code:
        self.need("decimal_fits")
        limit = 10 ** ((dst.precision or 18) - (dst.scale or 0))
        return Code(f"decimal_fits({self.column(code).text}, {limit}, {label!r}, {str(dst)!r})")

    def _parse(self, code: Code, dst: DataType, label: str) -> Code:
        """Strings to `dst` by the runtime's cast_text: a value that does not
        convert is one data error naming `label` and the value (Spark's own
        cast would make it NULL)."""
        self.need("cast_text")
        as_double = dst.kind == "decimal"  # the engine's decimals are doubles, rounded to the scale
        target = "double" if as_double else cast_type(dst)
        parsed = Code(f"cast_text({self.column(code).text}, {target!r}, {label!r}, {str(dst)!r})")
        if as_double:
            return Code(f"F.round({parsed.text}, {dst.scale or 0})")
        return parsed

    def _shift(self, base: E.Expr, bt: DataType, months: int, days: int) -> Code:
        code = self.column(self.code(base))
        if bt.kind == "date":  # months first (clamped to the month's end), then days
            if months:
                code = Code(f"F.add_months({code.text}, {months})")
            if days:
                code = Code(f"F.date_add({code.text}, {days})")
            return code
        parts = ", ".join(f"{name}=F.lit({n})" for name, n in (("months", months), ("days", days)) if n)
        return self.binary(code, "+", Code(f"F.make_interval({parts})")) if parts else code

    # --- one method per expression class -------------------------------------
    def _col(self, e: E.Col, t: DataType) -> Code:
        return Code(col_ref(e.name))

    def _arith(self, e: E.Arith, t: DataType) -> Code:
        lt, rt = self.type_of(e.left), self.type_of(e.right)
        if lt.kind == "interval" or rt.kind == "interval":
            return self._interval_arith(e, lt, rt)
        if e.op == "-" and lt.kind == "date" and rt.kind == "date":
            left, right = self.column(self.code(e.left)), self.code(e.right)
            return self.method(Code(f"F.datediff({left.text}, {self.column(right).text})"), "cast('bigint')")
        left, right = self.code(e.left, t if e.op != "/" else None), self.code(e.right, t if e.op != "/" else None)
        if e.op == "/":
            if _nonzero_constant(e.right):  # no zero divisor possible: Spark's `/` is the SQL one
                return self.binary(left, "/", right)
            # Spark gives NULL for x / 0; DuckDB (IEEE) gives +-inf, or NaN for 0 / 0.
            self.need("divide")
            return Code(f"divide({self.column(left).text}, {self.column(right).text})")
        if e.op == "%" and physical_kind(t) == "float64" and not _nonzero_constant(e.right):
            self.need("float_mod")  # x % 0.0 is NaN in DuckDB, NULL in Spark
            return Code(f"float_mod({self.column(left).text}, {self.column(right).text})")
        return self.binary(left, e.op, right)  # integer x % 0 is NULL in both

    def _compare(self, e: E.Compare, t: DataType) -> Code:
        left, right = self._comparable(e.left, e.right)
        return self.binary(left, _COMPARE_OPS[e.op], right)

    def _and(self, e: E.And, t: DataType) -> Code:
        return self._logic("&", e.args)

    def _or(self, e: E.Or, t: DataType) -> Code:
        return self._logic("|", e.args)

    def _logic(self, op: str, args: tuple[E.Expr, ...]) -> Code:
        codes = [self.code(a, BOOL) for a in args]
        codes[0] = self.column(codes[0])
        return Code(f" {op} ".join(self.operand(c) for c in codes), atom=False)

    def _not(self, e: E.Not, t: DataType) -> Code:
        return Code(f"~{self.operand(self.column(self.code(e.arg, BOOL)))}", atom=False)

    def _neg(self, e: E.Neg, t: DataType) -> Code:
        return Code(f"-{self.operand(self.column(self.code(e.arg)))}", atom=False)

    def _isnull(self, e: E.IsNull, t: DataType) -> Code:
        if self.type_of(e.arg).kind == "null":
            return self.literal(not e.negated, BOOL)
        return self.method(self.code(e.arg), "isNotNull()" if e.negated else "isNull()")

    def _inlist(self, e: E.InList, t: DataType) -> Code:
        """x IN (...): Spark's `isin` has SQL's rules (NULL when x is NULL, or
        when nothing matches and the list holds a NULL)."""
        at = self.type_of(e.arg)
        if at.kind == "null":
            return self.null(BOOL)
        target = self._in_type(at, e.values)
        values = []
        for v in e.values:
            if isinstance(v, E.Lit) and v.value is None:
                values.append("None")
            else:
                values.append(self.code(v, target).text)
        code = self.method(self.code(e.arg, target), f"isin({', '.join(values)})")
        return Code(f"~{code.text}", atom=False) if e.negated else code

    def _like(self, e: E.Like, t: DataType) -> Code:
        """Spark's LIKE/ILIKE; SQL (DuckDB) has no escape character, so a
        pattern holding Spark's default escape (backslash) names another one."""
        arg = self.column(self.code(e.arg))
        func = "ilike" if e.case_insensitive else "like"
        if "\\" not in e.pattern:
            code = self.method(arg, f"{func}({e.pattern!r})")
        else:
            escape = next(ch for ch in "!#~^@|&$" + "".join(map(chr, range(0x2400, 0x2500))) if ch not in e.pattern)
            code = Code(f"F.{func}({arg.text}, F.lit({e.pattern!r}), F.lit({escape!r}))")
        return Code(f"~{code.text}", atom=False) if e.negated else code

    def _case(self, e: E.Case, t: DataType) -> Code:
        """F.when(...).when(...).otherwise(...): a NULL condition counts as false, as in SQL."""
        if not e.whens:
            return self.code(e.default, t) if e.default is not None else self.null(t)
        text = "F"
        for cond, value in e.whens:
            text += f".when({self.column(self.code(cond, BOOL)).text}, {self.code(value, t).text})"
        if e.default is not None:
            text += f".otherwise({self.code(e.default, t).text})"
        return Code(text)

    def _extract(self, e: E.Extract, t: DataType) -> Code:
        at = self.type_of(e.arg)
        arg = self.column(self.code(e.arg))
        if e.part == "dow":  # Sunday = 0 as in DuckDB; Spark's dayofweek counts Sunday = 1
            return self.method(Code(f"F.dayofweek({arg.text}) - 1", atom=False), "cast('bigint')")
        if e.part not in _EXTRACT_FUNCS:
            raise UnsupportedError(f"EXTRACT({e.part.upper()} ...)")
        if e.part in ("hour", "minute", "second") and at.kind == "date":
            arg = self.method(arg, "cast('timestamp_ntz')")
        return self.method(Code(f"{_EXTRACT_FUNCS[e.part]}({arg.text})"), "cast('bigint')")

    # --- functions ------------------------------------------------------------
    def _func(self, e: E.Func, t: DataType) -> Code:
        name = e.name
        types = [self.type_of(a) for a in e.args]
        if name == "coalesce":
            args = [self.column(self.code(a, t)).text for a, at in zip(e.args, types) if at.kind != "null"]
            return Code(args[0]) if len(args) == 1 else Code(f"F.coalesce({', '.join(args)})")
        if name == "single_value":  # a scalar subquery's value; several rows are an error
            rows, value = self.column(self.code(e.args[0])).text, self.column(self.code(e.args[1], t)).text
            message = "more than one row returned by a subquery used as an expression"
            return Code(f"F.when({rows} > 1, F.raise_error(F.lit({message!r})).cast({cast_type(t)!r}))"
                        f".otherwise({value})")
        if name == "concat_ws":  # Spark's concat_ws also skips NULLs; a NULL separator gives NULL
            if types[0].kind == "null":
                return self.null(t)
            parts = [self.column(self.code(a, STRING)).text for a, at in zip(e.args[1:], types[1:]) if at.kind != "null"]
            sep = self.column(self.code(e.args[0], STRING)).text
            return Code(f"F.call_function('concat_ws', {', '.join([sep, *parts])})")
        if any(at.kind == "null" for at in types):
            return self.null(t)  # every other function is NULL on a NULL argument
        args = [self.column(self.code(a)) for a in e.args]
        if name == "concat":  # SQL's ||: NULL if any argument is NULL, as Spark's concat
            parts = [self.column(self.code(a, STRING)).text for a in e.args]
            return Code(f"F.concat({', '.join(parts)})")
        if name in _UNARY_FUNCS:
            return Code(f"{_UNARY_FUNCS[name]}({args[0].text})")
        if name == "length":
            return self.method(Code(f"F.length({args[0].text})"), "cast('bigint')")
        if name == "substring":
            return self._substring(e, args)
        if name == "round":
            digits = round_digits(e)
            # Spark's round is HALF_UP, DuckDB's: half away from zero
            return Code(f"F.round({args[0].text}, {digits})" if digits else f"F.round({args[0].text})")
        if name in ("floor", "ceil"):
            if physical_kind(types[0]) != "float64":
                return args[0]
            return self.method(Code(f"F.{name}({args[0].text})"), "cast('double')")  # Spark's are bigint
        if name.startswith("date_trunc_"):  # Spark's weeks start on Monday too
            unit = name[len("date_trunc_"):]
            value = self.column(self.code(e.args[0], TIMESTAMP)).text
            return Code(f"F.date_trunc({unit!r}, {value})")
        texts = ", ".join(a.text for a in args)
        if name == "regexp_matches":  # Java regex `find`: a match anywhere, as DuckDB's
            return Code(f"F.call_function('regexp_like', {texts})")
        if name in ("regexp_replace", "regexp_replace_all"):
            # DuckDB's group references are \N, Java's $N (a constant replacement is converted)
            replacement = e.args[2]
            rep = args[2].text
            if isinstance(replacement, E.Lit):
                java = re.sub(r"\\(\d)", r"$\1", str(replacement.value).replace("$", "\\$"))
                rep = f"F.lit({java!r})"
            s_, p_ = args[0].text, args[1].text
            if name == "regexp_replace_all":
                return Code(f"F.regexp_replace({s_}, {p_}, {rep})")
            # the first match only: the text before it, the match replaced, the text after it
            pos = f"F.call_function('regexp_instr', {s_}, {p_})"
            match = f"F.call_function('regexp_extract', {s_}, {p_}, F.lit(0))"
            return Code(f"F.when({pos} == 0, {s_}).otherwise(F.concat("
                        f"F.call_function('substr', {s_}, F.lit(1), {pos} - 1), "
                        f"F.regexp_replace({match}, {p_}, {rep}), "
                        f"F.call_function('substr', {s_}, {pos} + F.length({match}))))")
        if name in ("regexp_extract", "split_part", "lpad", "rpad"):  # '' when nothing matches / out of range
            return Code(f"F.call_function({name!r}, {texts})")
        raise UnsupportedError(f"function {name}() in the {ENGINE}")

    def _substring(self, e: E.Func, args: list[Code]) -> Code:
        bounds = constant_bounds(e)
        if bounds is not None:
            # DuckDB's SUBSTRING bounds as a Python slice [lo:hi]; Spark's
            # substring(pos, len) counts a negative pos from the end and
            # clamps like a slice, so one call covers every case.
            lo, hi = slice_bounds(*bounds)
            pos = lo + 1 if lo >= 0 else lo
            length = _MAX_INT if hi is None else max(hi - lo, 0)
            return Code(f"F.substring({args[0].text}, {pos}, {length})")
        self.need("substring")  # per-row start or length
        rest = ", ".join(a.text for a in args[1:])
        return Code(f"substring({args[0].text}, {rest})")


def _nonzero_constant(e: E.Expr) -> bool:
    return isinstance(e, E.Lit) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool) and e.value != 0
