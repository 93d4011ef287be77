"""What a backend can run, derived from what its generator implements.

`Capabilities` lists, per backend, the IR operators, expression node kinds,
scalar functions, aggregates, join kinds and window functions its code
generator handles. `--backend auto` plans nothing else on it
(`missing(caps, op)`), the conformance suite expects exactly those refusals,
and `musketeer capabilities` renders the matrix as docs/capabilities.md.

`derive()` reads a generator instead of trusting a hand-kept list:

- operators: the generator class's `op_<Operator>` methods (plus Sink:
  returning its outputs is what every generated program does, so some
  generators write sinks in their main loop instead of an `op_Sink`);
- expression kinds: the expression compiler's `_<kind>` methods (the
  dispatch `backends/common/expr_compiler.py` uses);
- functions and EXTRACT parts: each IR function (`ir.expr.FUNCTIONS`) and
  part (`EXTRACT_PARTS`) is compiled over typed columns; an
  UnsupportedError means the engine lacks it;
- aggregates, join kinds, window functions: the generator's `AGGREGATES`,
  `JOIN_KINDS`, `WINDOW_FUNCTIONS` when it declares them. Without them a
  generator with `op_Aggregate`/`op_Join`/`op_Window` takes the ones every
  such engine implemented when they arrived (`BASE_AGGREGATES`,
  `BASE_JOIN_KINDS`, `BASE_WINDOW_FUNCTIONS`): one added to the IR later is
  claimed by no engine until its generator lists it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir import window as W
from musketeer.ir.schema import Field, Schema
from musketeer.ir.types import BOOL, DATE, FLOAT64, INT64, STRING, TIMESTAMP, MusketeerError

#: The aggregates and join kinds in the IR when capabilities were first
#: derived; every generator with op_Aggregate / op_Join implements them.
BASE_AGGREGATES: frozenset[str] = frozenset({"sum", "count", "count_star", "avg", "min", "max"})
BASE_JOIN_KINDS: frozenset[str] = frozenset({"inner", "left", "right", "full", "semi", "anti", "cross"})
#: The window functions in the IR when the Window operator arrived; every
#: generator with op_Window implemented them all.
BASE_WINDOW_FUNCTIONS: frozenset[str] = frozenset({
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value", "sum", "avg", "count", "count_star", "min", "max"})


def expression_kinds() -> list[str]:
    """Every IR expression node class name (Col, Lit, Arith, ...)."""
    return sorted(name for name, cls in vars(E).items()
                  if isinstance(cls, type) and issubclass(cls, E.Expr) and cls is not E.Expr
                  and cls.__module__ == E.__name__)


@dataclass(frozen=True)
class Capabilities:
    """The features one backend implements, by IR name."""

    operators: frozenset[str] = frozenset()
    expressions: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()
    extract_parts: frozenset[str] = frozenset()
    aggregates: frozenset[str] = frozenset()
    join_kinds: frozenset[str] = frozenset()
    windows: frozenset[str] = frozenset()

    def __contains__(self, opname: object) -> bool:
        return opname in self.operators

    @classmethod
    def everything(cls) -> "Capabilities":
        """Every feature the IR defines now (for test doubles that run
        anything; a real engine derives its own)."""
        return cls(**{k: frozenset(v) for k, v in all_features().items()})

    def without(self, **drop: Iterable[str]) -> "Capabilities":
        """A copy lacking some features: `caps.without(operators={"While"})`."""
        return dataclasses.replace(self, **{k: getattr(self, k) - frozenset(v) for k, v in drop.items()})


def features(op: O.Op) -> Iterator[tuple[str, str]]:
    """(category, name) of everything `op` itself needs (not its inputs):
    category is one of Capabilities' field names."""
    yield "operators", op.opname
    if isinstance(op, O.Join):
        yield "join_kinds", op.kind
    for f in dataclasses.fields(op):
        if f.name in type(op).INPUTS:
            continue
        yield from _value_features(getattr(op, f.name))


def _value_features(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, E.Expr):
        for node in value.walk():
            yield "expressions", type(node).__name__
            if isinstance(node, E.Func):
                yield "functions", node.name
            elif isinstance(node, E.Extract):
                yield "extract_parts", node.part
    elif isinstance(value, E.AggCall):
        yield "aggregates", value.func
    elif isinstance(value, W.WindowCall):
        yield "windows", value.func
    elif isinstance(value, tuple):
        for v in value:
            yield from _value_features(v)


#: Singular nouns for messages ("operator While", "function substring").
NOUNS = {"operators": "operator", "expressions": "expression", "functions": "function",
         "extract_parts": "EXTRACT part",
         "aggregates": "aggregate", "join_kinds": "join kind", "windows": "window function"}


def missing(caps: Capabilities, op: O.Op) -> list[str]:
    """What `op` needs that `caps` lacks ("function substring", ...); for a
    While, also what its body and stop rule need."""
    ops = [op]
    if isinstance(op, O.While):
        roots = list(op.body) + ([op.stop] if op.stop is not None else [])
        stop = {id(f) for f in op.free_inputs}
        ops += [b for r in roots for b in O.walk(r, stop_at=stop) if id(b) not in stop]
    out: list[str] = []
    for o in ops:
        for category, name in features(o):
            if name not in getattr(caps, category):
                out.append(f"{NOUNS[category]} {name}")
    return list(dict.fromkeys(out))


def missing_in(caps: Capabilities, workflow: Any) -> list[str]:
    """`missing` over every operator of a workflow."""
    return list(dict.fromkeys(m for op in workflow.ops() for m in missing(caps, op)))


# --- deriving capabilities from a generator ------------------------------------

_PROBE_SCHEMA = Schema(tuple(Field(n, t) for n, t in
                             (("s", STRING), ("i", INT64), ("f", FLOAT64), ("d", DATE), ("t", TIMESTAMP), ("b", BOOL))))
_PROBE_ARGS = [E.Col("s"), E.Col("i"), E.Col("f"), E.Col("d")]


def _probe_calls(name: str) -> Iterator[E.Func]:
    """Calls of function `name` that the IR accepts, fewest arguments first."""
    for arity in (1, 2, 3):
        for args in itertools.product(_PROBE_ARGS, repeat=arity):
            call = E.Func(name, tuple(args))
            try:
                call.type_in(_PROBE_SCHEMA)
            except MusketeerError:
                continue
            yield call


def _compiles(compile_expr: Callable[[Schema, E.Expr], object], name: str) -> bool:
    calls = list(itertools.islice(_probe_calls(name), 4))
    for call in calls:
        try:
            compile_expr(_PROBE_SCHEMA, call)
            return True
        except MusketeerError:
            continue
    return False


def _extracts(compile_expr: Callable[[Schema, E.Expr], object], part: str) -> bool:
    try:
        for column in ("d", "t"):
            compile_expr(_PROBE_SCHEMA, E.Extract(part, E.Col(column)))
        return True
    except MusketeerError:
        return False


def derive(generator: type, compiler: type, compile_expr: Callable[[Schema, E.Expr], object]) -> Capabilities:
    """Capabilities of a generator class whose operators are `op_<Name>`
    methods and whose expression compiler class `compiler` dispatches to
    `_<kind>` methods; `compile_expr(schema, expr)` compiles one expression
    (raising UnsupportedError for what the engine lacks)."""
    operators = frozenset(name[3:] for name in dir(generator)
                          if name.startswith("op_") and name[3:] in O.OPERATORS) | {"Sink"}
    expressions = frozenset(k for k in expression_kinds() if callable(getattr(compiler, "_" + k.lower(), None)))
    functions = frozenset(n for n in E.FUNCTIONS if "Func" in expressions and _compiles(compile_expr, n))
    parts = frozenset(p for p in E.EXTRACT_PARTS if "Extract" in expressions and _extracts(compile_expr, p))
    aggregates = frozenset(getattr(generator, "AGGREGATES", BASE_AGGREGATES if "Aggregate" in operators else ()))
    joins = frozenset(getattr(generator, "JOIN_KINDS", BASE_JOIN_KINDS if "Join" in operators else ()))
    windows = frozenset(getattr(generator, "WINDOW_FUNCTIONS", BASE_WINDOW_FUNCTIONS if "Window" in operators else ()))
    return Capabilities(operators, expressions, functions, parts, aggregates, joins, windows)


# --- the matrix ----------------------------------------------------------------

def all_features() -> dict[str, list[str]]:
    """Every feature the IR defines, by category (rows of the matrix)."""
    return {
        "operators": list(O.OPERATORS),
        "expressions": expression_kinds(),
        "functions": sorted(E.FUNCTIONS),
        "extract_parts": list(E.EXTRACT_PARTS),
        "aggregates": list(E.AGG_FUNCS),
        "join_kinds": list(O.JOIN_KINDS),
        "windows": list(W.WINDOW_FUNCS),
    }


TITLES = {"operators": "Operators", "expressions": "Expressions", "functions": "Scalar functions",
          "extract_parts": "EXTRACT parts",
          "aggregates": "Aggregates", "join_kinds": "Join kinds", "windows": "Window functions"}


def matrix_markdown(caps: dict[str, Capabilities], notes: dict[str, str] | None = None) -> str:
    """docs/capabilities.md: one table per category, a column per backend."""
    names = list(caps)
    lines = ["# Backend capabilities", "",
             "Generated by `musketeer capabilities --write docs/capabilities.md` from what each",
             "backend's generator implements (backends/capabilities.py); tests/test_registry.py",
             "fails when this file is stale. `--backend auto` never plans a feature on a backend",
             "without it, and a backend chosen by name refuses such a workflow before generating.",
             ""]
    for name, note in (notes or {}).items():
        lines.append(f"- **{name}**: {note}")
    if notes:
        lines.append("")
    for category, rows in all_features().items():
        if not rows:
            continue
        lines += [f"## {TITLES[category]}", "",
                  "| | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for row in rows:
            cells = ["yes" if row in getattr(caps[n], category) else "no" for n in names]
            lines.append(f"| `{row}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
