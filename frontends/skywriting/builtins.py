"""Skywriting's built-in functions.

From the language reference: the job functions `spawn(f, args)`,
`spawn_exec(executor, args, n)` and `exec(executor, args, n)`, and the
utilities `len`, `range`, `int`, `has_key`, `get_key`. Added here:
`python("module:qualname")` (a Python function to spawn), `workflow(source,
tables[, options])` (a Musketeer workflow as a task), string helpers
(`str`, `float`, `split`, `join`, `strip`, `lower`, `upper`), `keys`,
`abs`, `min`, `max`, `sqrt`, `exp`, `log`, `floor` and `print` (to the
stderr of the process running the task). `map` and `mapreduce` come from
`include "mapreduce";` (stdlib/mapreduce.sky), as in the original.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any

from musketeer.frontends.skywriting.syntax import SkyError
from musketeer.frontends.skywriting.vm import (
    Builtin,
    Closure,
    Future,
    Host,
    PyFunction,
    Scope,
    VM,
    _number,
    type_name,
)
from musketeer.ir.types import SourceLoc

_Impl = Callable[[VM, Host, list[Any], SourceLoc], Any]
_TABLE: dict[str, tuple[int, int, _Impl]] = {}  # name -> (min args, max args, implementation)


def _builtin(name: str, lo: int, hi: int | None = None) -> Callable[[_Impl], _Impl]:
    def register(fn: _Impl) -> _Impl:
        _TABLE[name] = (lo, lo if hi is None else hi, fn)
        return fn
    return register


def names() -> list[str]:
    return sorted(_TABLE)


#: the hidden global naming the script's directory (relative paths in workflow() start there)
SCRIPT_DIR = "__script_dir__"


class _BuiltinScope(Scope):
    """The scope above a script's globals; pickled as a reference to this module's
    one instance (continuations and spawned closures carry no copy of it)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_builtin_scope, ())


def _builtin_scope() -> Scope:
    return BUILTINS


def globals_for(env: dict[str, str] | None = None, script_dir: str | None = None) -> dict[str, Any]:
    """A script's starting globals (the builtins are the scope above them): `env`
    (the --arg values) and the script's folder."""
    out: dict[str, Any] = {}
    out["env"] = dict(env or {})
    if script_dir is not None:
        out[SCRIPT_DIR] = script_dir
    return out


def run_spawned_builtin(name: str, args: list[Any], host: Host, loc: SourceLoc) -> Any:
    """A spawned built-in (`spawn(exec, [...])` in the original scripts) as its own task."""
    from musketeer.frontends.skywriting.compiler import Code

    code = Code(f"<{name}>", (), loc, [("CONST", None), ("RETURN", None)], [(loc.line, loc.col)] * 2)
    return call_builtin(VM(code), host, name, list(args), loc)


def call_builtin(vm: VM, host: Host, name: str, args: list[Any], loc: SourceLoc) -> Any:
    lo, hi, fn = _TABLE[name]
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise SkyError(f"{name}() takes {want} argument(s), got {len(args)}", loc)
    return fn(vm, host, args, loc)


def _expect(cond: bool, message: str, loc: SourceLoc) -> None:
    if not cond:
        raise SkyError(message, loc)


def _count(v: Any, what: str, loc: SourceLoc) -> int:
    _expect(isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            f"{what} must be a non-negative integer, got {show(v)}", loc)
    return int(v)


# --- job functions -------------------------------------------------------------------
@_builtin("spawn", 1, 2)
def _spawn(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> Future:
    fn, args = a[0], (a[1] if len(a) > 1 else [])
    if isinstance(fn, str):
        fn = _python(vm, host, [fn], loc)
    _expect(isinstance(fn, (Closure, PyFunction, Builtin)),
            f"spawn needs a function (or python(\"module:name\")), got {type_name(fn)}", loc)
    _expect(isinstance(args, list), f"spawn's arguments are a list, got {type_name(args)}", loc)
    if isinstance(fn, Closure):
        _expect(len(args) == len(fn.code.params),
                f"{fn.code.name} takes {len(fn.code.params)} argument(s), spawn gives {len(args)}", loc)
    return host.spawn(fn, list(args), loc)


def _exec_args(a: list[Any], loc: SourceLoc) -> tuple[str, Any, int]:
    _expect(isinstance(a[0], str), f"the executor is a name (\"stdinout\", ...), got {type_name(a[0])}", loc)
    return a[0], a[1], _count(a[2], "the number of outputs", loc)


@_builtin("spawn_exec", 3)
def _spawn_exec(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> list[Future]:
    return host.spawn_exec(*_exec_args(a, loc), loc)


@_builtin("exec", 3)
def _exec(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> list[Future]:
    # the original waited for the executor here; the references it returns are
    # the same either way, and waiting happens at the first `*` of one of them
    return host.spawn_exec(*_exec_args(a, loc), loc)


@_builtin("python", 1)
def _python(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> PyFunction:
    name = a[0]
    module, sep, qual = name.partition(":") if isinstance(name, str) else ("", "", "")
    _expect(bool(sep and module and qual), f"python() takes \"module:function\", got {show(name)}", loc)
    return PyFunction(name)


@_builtin("workflow", 2, 3)
def _workflow(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> Future:
    source, tables = a[0], a[1]
    options = a[2] if len(a) > 2 else {}
    _expect(isinstance(source, str), f"workflow() takes SQL text or a .sql/.json path, got {type_name(source)}", loc)
    _expect(isinstance(tables, dict), f"workflow()'s tables are a dict name -> path or rows, got "
                                      f"{type_name(tables)}", loc)
    _expect(isinstance(options, dict), f"workflow()'s options are a dict, got {type_name(options)}", loc)
    # relative paths are the script's directory's (tasks run wherever a worker runs)
    found, base = vm.frames[-1].scope.lookup(SCRIPT_DIR)
    if found and isinstance(base, str):
        if _is_path(source):
            source = os.path.join(base, source)
        tables = {k: os.path.join(base, v) if isinstance(v, str) else v for k, v in tables.items()}
    return host.workflow(source, tables, options, loc)


def _is_path(source: str) -> bool:
    return source.endswith((".sql", ".json", ".py")) and "\n" not in source


# --- utilities -----------------------------------------------------------------------
@_builtin("len", 1)
def _len(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> int:
    _expect(isinstance(a[0], (list, str, dict)), f"len() of {type_name(a[0])}", loc)
    return len(a[0])


@_builtin("range", 1, 3)
def _range(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> list[int]:
    for v in a:
        _expect(isinstance(v, int) and not isinstance(v, bool), f"range() takes integers, got {show(v)}", loc)
    _expect(len(a) < 3 or a[2] != 0, "range() step must not be zero", loc)
    return list(range(*a))


@_builtin("int", 1)
def _int(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> int:
    v = a[0]
    try:
        if isinstance(v, str):
            return int(v.strip())
        if _number(v):
            return int(v)
    except (ValueError, OverflowError):
        pass
    raise SkyError(f"int() cannot convert {show(v)}", loc)


@_builtin("float", 1)
def _float(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> float:
    v = a[0]
    try:
        if isinstance(v, str) or _number(v):
            return float(v)
    except ValueError:
        pass
    raise SkyError(f"float() cannot convert {show(v)}", loc)


@_builtin("str", 1)
def _str(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> str:
    return a[0] if isinstance(a[0], str) else show(a[0])


@_builtin("has_key", 2)
def _has_key(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> bool:
    _expect(isinstance(a[0], dict), f"has_key() needs a dict, got {type_name(a[0])}", loc)
    return a[1] in a[0]


@_builtin("get_key", 3)
def _get_key(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> Any:
    _expect(isinstance(a[0], dict), f"get_key() needs a dict, got {type_name(a[0])}", loc)
    return a[0].get(a[1], a[2])


@_builtin("keys", 1)
def _keys(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> list[Any]:
    _expect(isinstance(a[0], dict), f"keys() needs a dict, got {type_name(a[0])}", loc)
    return list(a[0])


@_builtin("split", 1, 2)
def _split(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> list[str]:
    _expect(all(isinstance(v, str) for v in a), "split() takes strings", loc)
    return a[0].split(a[1]) if len(a) > 1 else a[0].split()


@_builtin("join", 1, 2)
def _join(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> str:
    sep = a[1] if len(a) > 1 else ""
    _expect(isinstance(a[0], list) and all(isinstance(v, str) for v in a[0]) and isinstance(sep, str),
            "join() takes a list of strings and a separator", loc)
    return sep.join(a[0])


def _string_fn(name: str, fn: Callable[[str], str]) -> None:
    def impl(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> str:
        _expect(isinstance(a[0], str), f"{name}() takes a string, got {type_name(a[0])}", loc)
        return fn(a[0])
    _builtin(name, 1)(impl)


_string_fn("strip", str.strip)
_string_fn("lower", str.lower)
_string_fn("upper", str.upper)


def _numbers(name: str, a: list[Any], loc: SourceLoc) -> list[Any]:
    values = a[0] if len(a) == 1 and isinstance(a[0], list) else a
    _expect(bool(values) and all(_number(v) for v in values), f"{name}() takes numbers (or a list of them)", loc)
    return values


@_builtin("min", 1, 1 << 16)
def _min(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> Any:
    return min(_numbers("min", a, loc))


@_builtin("max", 1, 1 << 16)
def _max(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> Any:
    return max(_numbers("max", a, loc))


@_builtin("abs", 1)
def _abs(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> Any:
    return abs(_numbers("abs", a, loc)[0])


@_builtin("sqrt", 1)
def _sqrt(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> float:
    v = _numbers("sqrt", a, loc)[0]
    _expect(v >= 0, f"sqrt() of a negative number ({v})", loc)
    return math.sqrt(v)


@_builtin("exp", 1)
def _exp(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> float:
    v = _numbers("exp", a, loc)[0]
    try:
        return math.exp(v)
    except OverflowError:
        raise SkyError(f"exp({v}) overflows", loc) from None


@_builtin("log", 1)
def _log(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> float:
    v = _numbers("log", a, loc)[0]
    _expect(v > 0, f"log() of a number that is not positive ({v})", loc)
    return math.log(v)


@_builtin("floor", 1)
def _floor(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> int:
    return math.floor(_numbers("floor", a, loc)[0])


@_builtin("print", 1)
def _print(vm: VM, host: Host, a: list[Any], loc: SourceLoc) -> None:
    """As in the original: a line on the stderr of the process running the task
    (a worker's, under a cluster), for debugging."""
    print(a[0] if isinstance(a[0], str) else show(a[0]), file=sys.stderr, flush=True)


# --- printing ------------------------------------------------------------------------
def plain(v: Any) -> Any:
    """The value as JSON-able data (futures and functions as their descriptions)."""
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {(k if isinstance(k, str) else json.dumps(plain(k))): plain(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)


def show(v: Any) -> str:
    """How a script's values print: JSON (true/false/null, lists, dicts)."""
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return json.dumps(plain(v), ensure_ascii=False)


BUILTINS: Scope = _BuiltinScope({name: Builtin(name) for name in _TABLE}, None)
