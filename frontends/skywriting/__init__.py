"""Skywriting (Murray and Hand, "Scripting the cloud with Skywriting", HotCloud
2010): the script language of CIEL, run by a resumable interpreter.

    syntax.py     lark grammar (grammar.lark) -> AST; includes resolved at parse time
    compiler.py   AST -> stack-machine code
    vm.py         the interpreter; its state pickles, so `*` of an unfinished
                  future becomes a continuation task instead of a blocked thread
    builtins.py   spawn, exec, python(), workflow(), len, range, ...
    local.py      an in-process host (every spawn runs at once), for tests
    stdlib/       scripts for `include` (mapreduce, environ, stdinout)

The CIEL host (tasks, continuations, executors) is musketeer/sky_tasks.py:
the frontend imports no engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from musketeer.frontends.skywriting.builtins import globals_for, show
from musketeer.frontends.skywriting.compiler import Code, compile_script
from musketeer.frontends.skywriting.syntax import SkyError, parse_file, parse_text
from musketeer.frontends.skywriting.vm import VM, Blocked, Future

__all__ = ["SkyError", "VM", "Blocked", "Future", "Code", "load", "load_text", "start", "run_local", "show"]


def load(path: str | Path) -> Code:
    """Parse and compile a script file (SkyError, located, if it is not valid)."""
    return compile_script(parse_file(path), str(path))


def load_text(text: str, file: str = "<script>") -> Code:
    return compile_script(parse_text(text, file), file)


def start(code: Code, env: dict[str, str] | None = None) -> VM:
    """A VM at the start of the script, with the builtins and `env` as globals
    (relative paths given to workflow() are taken from the script's folder)."""
    file = code.loc.file
    script_dir = None if file.startswith("<") else str(Path(file).resolve().parent)
    return VM(code, globals_=globals_for(env, script_dir))


def run_local(code: Code, env: dict[str, str] | None = None, **host_args: Any) -> Any:
    from musketeer.frontends.skywriting.local import LocalHost

    return start(code, env).run(LocalHost(**host_args))
