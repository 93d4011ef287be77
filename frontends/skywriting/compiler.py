"""AST -> bytecode for the resumable interpreter (vm.py).

Why bytecode rather than walking the AST: the interpreter must be able to
stop in the middle of any expression (at a `*` of an unfinished future),
be pickled, and carry on in another process. A stack machine's state is
plain data (frames of code, program counter, scope and operand stack), so
a continuation is just that state.

Each `Code` holds `ops` (opcode, argument) and a parallel `locs`, so every
run-time error is located `file:line:col`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from musketeer.frontends.skywriting import syntax as s
from musketeer.frontends.skywriting.syntax import SkyError
from musketeer.ir.types import SourceLoc


@dataclass(eq=False)
class Code:
    name: str
    params: tuple[str, ...]
    loc: SourceLoc
    ops: list[tuple[str, Any]] = field(default_factory=list)
    # (line, col) per op, the file once: a continuation pickles the code, and one
    # SourceLoc object per op made that a third of a Skywriting loop's iteration
    locs: list[tuple[int, int]] = field(default_factory=list)

    def loc_at(self, pc: int) -> SourceLoc:
        line, col = self.locs[pc]
        return SourceLoc(self.loc.file, line, col)

    def __repr__(self) -> str:
        return f"<code {self.name} {self.loc.file}:{self.loc.line}>"


@dataclass
class _Loop:
    breaks: list[int]
    continues: list[int]
    is_for: bool


class _Compiler:
    def __init__(self, code: Code, top_level: bool) -> None:
        self.code = code
        self.loops: list[_Loop] = []
        self.top_level = top_level

    def emit(self, op: str, arg: Any, loc: SourceLoc) -> int:
        self.code.ops.append((op, arg))
        self.code.locs.append((loc.line, loc.col))
        return len(self.code.ops) - 1

    def here(self) -> int:
        return len(self.code.ops)

    def patch(self, at: int, target: int) -> None:
        self.code.ops[at] = (self.code.ops[at][0], target)

    # statements
    def block(self, stmts: tuple[s.Node, ...]) -> None:
        for stmt in stmts:
            self.stmt(stmt)

    def stmt(self, n: s.Node) -> None:
        if isinstance(n, tuple):  # an include below the top level
            raise SkyError("include is only allowed at the top level of a script", n[1])
        if isinstance(n, s.Assign):
            self.assign(n)
        elif isinstance(n, s.ExprStmt):
            self.expr(n.expr)
            self.emit("POP", None, n.loc)
        elif isinstance(n, s.Return):
            if n.value is None:
                self.emit("CONST", None, n.loc)
            else:
                self.expr(n.value)
            self.emit("RETURN", None, n.loc)
        elif isinstance(n, s.If):
            self.expr(n.cond)
            jump_else = self.emit("JUMP_IF_FALSE", None, n.loc)
            self.block(n.then)
            if n.orelse:
                jump_end = self.emit("JUMP", None, n.loc)
                self.patch(jump_else, self.here())
                self.block(n.orelse)
                self.patch(jump_end, self.here())
            else:
                self.patch(jump_else, self.here())
        elif isinstance(n, s.While):
            self.while_(n)
        elif isinstance(n, s.For):
            self.for_(n)
        elif isinstance(n, (s.Break, s.Continue)):
            if not self.loops:
                raise SkyError(f"{'break' if isinstance(n, s.Break) else 'continue'} outside a loop", n.loc)
            loop = self.loops[-1]
            if isinstance(n, s.Break):
                if loop.is_for:
                    self.emit("POP", None, n.loc)  # the iterator
                loop.breaks.append(self.emit("JUMP", None, n.loc))
            else:
                loop.continues.append(self.emit("JUMP", None, n.loc))
        elif isinstance(n, s.FuncDecl):
            self.function(n.function)
            self.emit("STORE", n.function.name, n.loc)
        else:  # pragma: no cover - the grammar makes no other statements
            raise SkyError(f"cannot compile {type(n).__name__}", n.loc)

    def while_(self, n: s.While) -> None:
        loop = _Loop([], [], False)
        if n.test_first:
            start = self.here()
            self.expr(n.cond)
            exit_jump = self.emit("JUMP_IF_FALSE", None, n.loc)
            self.loops.append(loop)
            self.block(n.body)
            self.loops.pop()
            for at in loop.continues:
                self.patch(at, start)
            self.emit("JUMP", start, n.loc)
            end = self.here()
            self.patch(exit_jump, end)
        else:
            start = self.here()
            self.loops.append(loop)
            self.block(n.body)
            self.loops.pop()
            test = self.here()
            for at in loop.continues:
                self.patch(at, test)
            self.expr(n.cond)
            self.emit("JUMP_IF_TRUE", start, n.loc)
            end = self.here()
        for at in loop.breaks:
            self.patch(at, end)

    def for_(self, n: s.For) -> None:
        self.expr(n.iterable)
        self.emit("ITER", None, n.iterable.loc)
        start = self.emit("FOR_ITER", None, n.loc)
        self.emit("STORE", n.var, n.loc)
        loop = _Loop([], [], True)
        self.loops.append(loop)
        self.block(n.body)
        self.loops.pop()
        for at in loop.continues:
            self.patch(at, start)
        self.emit("JUMP", start, n.loc)
        end = self.here()
        self.patch(start, end)  # FOR_ITER pops the iterator and jumps here when done
        for at in loop.breaks:
            self.patch(at, end)

    def assign(self, n: s.Assign) -> None:
        binop = n.op[:-1] if n.op != "=" else None
        if isinstance(n.target, s.Name):
            if binop is not None:
                self.emit("LOAD", n.target.name, n.target.loc)
                self.expr(n.value)
                self.emit("BINOP", binop, n.loc)
            else:
                self.expr(n.value)
            self.emit("STORE", n.target.name, n.loc)
            return
        assert isinstance(n.target, s.Index)
        self.expr(n.target.target)
        self.expr(n.target.key)
        if binop is not None:
            self.emit("DUP2", None, n.loc)
            self.emit("INDEX", None, n.target.loc)
            self.expr(n.value)
            self.emit("BINOP", binop, n.loc)
        else:
            self.expr(n.value)
        self.emit("STORE_INDEX", None, n.loc)

    def function(self, f: s.Function) -> None:
        code = Code(f.name, f.params, f.loc)
        inner = _Compiler(code, top_level=False)
        inner.block(f.body)
        inner.emit("CONST", None, f.loc)
        inner.emit("RETURN", None, f.loc)
        self.emit("FUNCTION", code, f.loc)

    # expressions
    def expr(self, n: s.Node) -> None:
        if isinstance(n, s.Const):
            self.emit("CONST", n.value, n.loc)
        elif isinstance(n, s.Name):
            self.emit("LOAD", n.name, n.loc)
        elif isinstance(n, s.ListLit):
            for item in n.items:
                self.expr(item)
            self.emit("LIST", len(n.items), n.loc)
        elif isinstance(n, s.DictLit):
            for key, value in n.pairs:
                self.expr(key)
                self.expr(value)
            self.emit("DICT", len(n.pairs), n.loc)
        elif isinstance(n, s.Unary):
            self.expr(n.operand)
            self.emit({"!": "NOT", "-": "NEG", "*": "DEREF"}[n.op], None, n.loc)
        elif isinstance(n, s.Binary):
            self.expr(n.left)
            self.expr(n.right)
            self.emit("BINOP", n.op, n.loc)
        elif isinstance(n, s.Logic):
            self.expr(n.left)
            jump = self.emit("JUMP_IF_FALSE_OR_POP" if n.op == "&&" else "JUMP_IF_TRUE_OR_POP", None, n.loc)
            self.expr(n.right)
            self.emit("TRUTH", None, n.right.loc)
            self.patch(jump, self.here())
        elif isinstance(n, s.Call):
            self.expr(n.callee)
            for arg in n.args:
                self.expr(arg)
            self.emit("CALL", len(n.args), n.loc)
        elif isinstance(n, s.Index):
            self.expr(n.target)
            self.expr(n.key)
            self.emit("INDEX", None, n.loc)
        elif isinstance(n, s.Function):
            self.function(n)
        else:  # pragma: no cover
            raise SkyError(f"cannot compile {type(n).__name__}", n.loc)


def compile_script(stmts: tuple[s.Node, ...], file: str) -> Code:
    """The top level of a script as one Code (its `return` ends the script)."""
    code = Code("<script>", (), SourceLoc(file, 1, 1))
    c = _Compiler(code, top_level=True)
    c.block(stmts)
    c.emit("CONST", None, code.loc)
    c.emit("RETURN", None, code.loc)
    return code
