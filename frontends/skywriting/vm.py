"""The resumable Skywriting interpreter: a stack machine whose whole state pickles.

`VM.run(host)` executes until the script (or the spawned function) returns,
or until it dereferences a future whose value it does not have. Then it
raises `Blocked(future)` *without* consuming the `*`: the caller pickles the
VM and starts a continuation task that depends on that future; when the
task runs, `VM.resume(value)` hands the value over and `*` completes. No
thread waits meanwhile (CIEL's continuation-passing, as in the paper).

The interpreter knows no engine: spawning, running external programs and
workflows, and looking futures up go through a `Host` (see `Host` below),
which the CIEL glue (musketeer/sky_tasks.py) implements with tasks and a
plain in-process host (`LocalHost`) implements eagerly, for tests.

Semantics, kept from the original (Python 2 based) implementation:
`int / int` floors; `list + list` concatenates and `list + x` appends x;
assigning `xs[len(xs)] = v` appends; functions are closures over the scope
they were defined in; assignment makes a variable local to the function
(reads see enclosing scopes); spawned functions get a copy of what they
capture (a task never changes its parent's variables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from musketeer.frontends.skywriting.compiler import Code
from musketeer.frontends.skywriting.syntax import SkyError
from musketeer.ir.types import SourceLoc

MAX_DEPTH = 2000  # nested calls in one task (a spawn starts afresh)


class Future:
    """A reference to the (future) output of a task."""

    __slots__ = ("id",)

    def __init__(self, id: str) -> None:
        self.id = id

    def __repr__(self) -> str:
        return f"<future {self.id[:12]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Future) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Future, (self.id,))


class Scope:
    """Variables of one function activation (or the script's globals)."""

    __slots__ = ("vars", "parent")

    def __init__(self, vars: dict[str, Any], parent: "Scope | None") -> None:
        self.vars = vars
        self.parent = parent

    def lookup(self, name: str) -> tuple[bool, Any]:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return True, scope.vars[name]
            scope = scope.parent
        return False, None

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.vars, self.parent)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.vars, self.parent = state


@dataclass(eq=False)
class Closure:
    code: Code
    scope: Scope

    def __repr__(self) -> str:
        return f"<function {self.code.name}>"


@dataclass(frozen=True)
class Builtin:
    name: str

    def __repr__(self) -> str:
        return f"<builtin {self.name}>"


@dataclass(frozen=True)
class PyFunction:
    """A Python function named `module:qualname`, made by python("..."): spawn it."""

    name: str

    def __repr__(self) -> str:
        return f"<python {self.name}>"


class Blocked(Exception):
    """`*` of a future the VM has no value for: continue in a task that depends on it."""

    def __init__(self, future: Future) -> None:
        super().__init__(future)
        self.future = future


class Host(Protocol):
    def spawn(self, fn: "Closure | PyFunction | Builtin", args: list[Any], loc: SourceLoc) -> Future: ...

    def spawn_exec(self, executor: str, args: Any, n_outputs: int, loc: SourceLoc) -> list[Future]: ...

    def workflow(self, source: str, tables: dict[str, Any], options: dict[str, Any], loc: SourceLoc) -> Future: ...

    def lookup(self, future: Future) -> tuple[bool, Any]:
        """The future's value if it can be had without waiting."""
        ...


@dataclass(eq=False)
class Frame:
    code: Code
    scope: Scope
    pc: int = 0
    stack: list[Any] = field(default_factory=list)


class _Iter:
    """A for loop's position (plain data, so it pickles with the frame)."""

    __slots__ = ("items", "i")

    def __init__(self, items: list[Any]) -> None:
        self.items, self.i = items, 0

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.items, self.i)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.items, self.i = state


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "dict"
    if isinstance(v, Future):
        return "future"
    if isinstance(v, (Closure, Builtin, PyFunction)):
        return "function"
    return type(v).__name__


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def truth(v: Any, loc: SourceLoc) -> bool:
    if isinstance(v, Future):
        raise SkyError("a future is not a condition: dereference it with *", loc)
    return bool(v)


def binop(op: str, a: Any, b: Any, loc: SourceLoc) -> Any:
    if op == "==":
        return a == b and type_name(a) == type_name(b) or (_number(a) and _number(b) and a == b)
    if op == "!=":
        return not binop("==", a, b, loc)
    if op in ("<", "<=", ">", ">="):
        if not ((_number(a) and _number(b)) or (isinstance(a, str) and isinstance(b, str))):
            raise SkyError(f"cannot compare {type_name(a)} {op} {type_name(b)}", loc)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "+":
        if isinstance(a, list):
            return a + b if isinstance(b, list) else [*a, b]
        if isinstance(a, str) and isinstance(b, str):
            return a + b
    if _number(a) and _number(b):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op in ("/", "%"):
            if b == 0:
                raise SkyError("division by zero", loc)
            if op == "%":
                return a % b
            return a // b if isinstance(a, int) and isinstance(b, int) else a / b
    if op == "*" and isinstance(a, (str, list)) and isinstance(b, int) and not isinstance(b, bool):
        return a * b
    raise SkyError(f"cannot apply {op} to {type_name(a)} and {type_name(b)}", loc)


class VM:
    """One task's interpreter: call frames over shared code, plus at most one
    future value handed over by `resume`."""

    def __init__(self, code: Code, args: list[Any] | None = None, scope: Scope | None = None,
                 globals_: dict[str, Any] | None = None) -> None:
        if scope is None:
            from musketeer.frontends.skywriting.builtins import BUILTINS

            scope = Scope(dict(globals_ or {}), BUILTINS)
        else:
            scope = Scope(dict(zip(code.params, args or [])), scope)
        self.frames: list[Frame] = [Frame(code, scope)]
        self.result: Any = None
        self.done = False
        self.resolved: tuple[str, Any] | None = None
        self.steps = 0

    @classmethod
    def call(cls, closure: Closure, args: list[Any], loc: SourceLoc | None = None) -> "VM":
        """A VM that runs `closure(args)` (a spawned function's task)."""
        _arity(closure, args, loc or closure.code.loc)
        return cls(closure.code, list(args), closure.scope)

    def resume(self, future_id: str, value: Any) -> None:
        self.resolved = (future_id, value)

    def run(self, host: Host) -> Any:
        """Run to the end (returns the result) or raise Blocked."""
        from musketeer.frontends.skywriting.builtins import call_builtin

        frames = self.frames
        while True:
            f = frames[-1]
            op, arg = f.code.ops[f.pc]
            stack = f.stack
            self.steps += 1
            if op == "CONST":
                stack.append(arg)
            elif op == "LOAD":
                found, value = f.scope.lookup(arg)
                if not found:
                    raise SkyError(f"{arg} is not defined", f.code.loc_at(f.pc))
                stack.append(value)
            elif op == "STORE":
                f.scope.vars[arg] = stack.pop()
            elif op == "POP":
                stack.pop()
            elif op == "DUP2":
                stack.extend(stack[-2:])
            elif op == "BINOP":
                b = stack.pop()
                stack[-1] = binop(arg, stack[-1], b, f.code.loc_at(f.pc))
            elif op == "NOT":
                stack[-1] = not truth(stack[-1], f.code.loc_at(f.pc))
            elif op == "TRUTH":
                stack[-1] = truth(stack[-1], f.code.loc_at(f.pc))
            elif op == "NEG":
                if not _number(stack[-1]):
                    raise SkyError(f"cannot negate {type_name(stack[-1])}", f.code.loc_at(f.pc))
                stack[-1] = -stack[-1]
            elif op == "DEREF":
                value = stack[-1]
                if not isinstance(value, Future):
                    raise SkyError(f"* needs a future (from spawn), got {type_name(value)}", f.code.loc_at(f.pc))
                if self.resolved is not None and self.resolved[0] == value.id:
                    stack[-1] = self.resolved[1]
                else:
                    found, got = host.lookup(value)
                    if not found:
                        raise Blocked(value)  # pc stays at this DEREF: resume re-runs it
                    self.resolved = (value.id, got)
                    stack[-1] = got
            elif op == "LIST":
                items = stack[len(stack) - arg:] if arg else []
                del stack[len(stack) - arg:]
                stack.append(list(items))
            elif op == "DICT":
                flat = stack[len(stack) - 2 * arg:] if arg else []
                del stack[len(stack) - 2 * arg:]
                out = {}
                for k, v in zip(flat[::2], flat[1::2]):
                    _key(k, f.code.loc_at(f.pc))
                    out[k] = v
                stack.append(out)
            elif op == "INDEX":
                key = stack.pop()
                stack[-1] = _index(stack[-1], key, f.code.loc_at(f.pc))
            elif op == "STORE_INDEX":
                value, key, container = stack.pop(), stack.pop(), stack.pop()
                _store_index(container, key, value, f.code.loc_at(f.pc))
            elif op == "JUMP":
                f.pc = arg
                continue
            elif op == "JUMP_IF_FALSE":
                if not truth(stack.pop(), f.code.loc_at(f.pc)):
                    f.pc = arg
                    continue
            elif op == "JUMP_IF_TRUE":
                if truth(stack.pop(), f.code.loc_at(f.pc)):
                    f.pc = arg
                    continue
            elif op == "JUMP_IF_FALSE_OR_POP":
                if not truth(stack[-1], f.code.loc_at(f.pc)):
                    stack[-1] = False
                    f.pc = arg
                    continue
                stack.pop()
            elif op == "JUMP_IF_TRUE_OR_POP":
                if truth(stack[-1], f.code.loc_at(f.pc)):
                    stack[-1] = True
                    f.pc = arg
                    continue
                stack.pop()
            elif op == "FUNCTION":
                stack.append(Closure(arg, f.scope))
            elif op == "ITER":
                it = stack[-1]
                if isinstance(it, dict):
                    it = list(it)
                elif isinstance(it, str):
                    it = list(it)
                elif not isinstance(it, list):
                    raise SkyError(f"cannot iterate over {type_name(it)}", f.code.loc_at(f.pc))
                stack[-1] = _Iter(list(it))
            elif op == "FOR_ITER":
                it = stack[-1]
                if it.i >= len(it.items):
                    stack.pop()
                    f.pc = arg
                    continue
                stack.append(it.items[it.i])
                it.i += 1
            elif op == "CALL":
                args = stack[len(stack) - arg:] if arg else []
                del stack[len(stack) - arg:]
                fn = stack.pop()
                loc = f.code.loc_at(f.pc)
                if isinstance(fn, Closure):
                    _arity(fn, args, loc)
                    if len(frames) >= MAX_DEPTH:
                        raise SkyError(f"calls nested deeper than {MAX_DEPTH} (use spawn for deep recursion)", loc)
                    f.pc += 1
                    frames.append(Frame(fn.code, Scope(dict(zip(fn.code.params, args)), fn.scope)))
                    continue
                if isinstance(fn, Builtin):
                    stack.append(call_builtin(self, host, fn.name, args, loc))
                elif isinstance(fn, PyFunction):
                    raise SkyError(f"python functions run as tasks: spawn({fn.name!r}...), not a call", loc)
                else:
                    raise SkyError(f"{type_name(fn)} is not a function", loc)
            elif op == "RETURN":
                value = stack.pop()
                frames.pop()
                if not frames:
                    self.result, self.done = value, True
                    self.frames = [f]  # keep the code for inspection; nothing runs any more
                    return value
                frames[-1].stack.append(value)
                continue
            else:  # pragma: no cover
                raise SkyError(f"bad opcode {op}", f.code.loc_at(f.pc))
            f.pc += 1


def _arity(fn: Closure, args: list[Any], loc: SourceLoc) -> None:
    if len(args) != len(fn.code.params):
        raise SkyError(f"{fn.code.name} takes {len(fn.code.params)} argument(s), got {len(args)}", loc)


def _key(k: Any, loc: SourceLoc) -> None:
    if not isinstance(k, (str, int, float, bool)) and k is not None:
        raise SkyError(f"a dict key must be a string or a number, got {type_name(k)}", loc)


def _index(container: Any, key: Any, loc: SourceLoc) -> Any:
    if isinstance(container, (list, str)):
        if not isinstance(key, int) or isinstance(key, bool):
            raise SkyError(f"a {type_name(container)} index must be an integer, got {type_name(key)}", loc)
        if not -len(container) <= key < len(container):
            raise SkyError(f"index {key} out of range (length {len(container)})", loc)
        return container[key]
    if isinstance(container, dict):
        _key(key, loc)
        if key not in container:
            raise SkyError(f"no key {key!r} in the dict", loc)
        return container[key]
    if isinstance(container, Future):
        raise SkyError("cannot index a future: dereference it first (*f)[i]", loc)
    raise SkyError(f"cannot index {type_name(container)}", loc)


def _store_index(container: Any, key: Any, value: Any, loc: SourceLoc) -> None:
    if isinstance(container, list):
        if not isinstance(key, int) or isinstance(key, bool):
            raise SkyError(f"a list index must be an integer, got {type_name(key)}", loc)
        if key == len(container):
            container.append(value)
        elif -len(container) <= key < len(container):
            container[key] = value
        else:
            raise SkyError(f"index {key} out of range (length {len(container)}; "
                           "assigning at the length appends)", loc)
        return
    if isinstance(container, dict):
        _key(key, loc)
        container[key] = value
        return
    raise SkyError(f"cannot assign into {type_name(container)}", loc)

