"""Run a test module as N MPyC party processes (`python MODULE i ARGS...`)
and collect the JSON each one writes: for tests that drive the secure
engine directly, below the `musketeer mpc run` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_parties(script: str, n: int, args: list[str], out_dir: Path, *, env: dict[str, str] | None = None,
                timeout: float = 600) -> list[dict]:
    """Party i runs `script i *args out_dir/out{i}.json`; every process
    must exit 0 (its stderr tail is the failure message)."""
    outs = [out_dir / f"out{i}.json" for i in range(n)]
    procs = [subprocess.Popen([sys.executable, script, str(i), *args, str(outs[i])], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, **env} if env else None)
             for i in range(n)]
    try:
        errs = [p.communicate(timeout=timeout)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, err in zip(procs, errs):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(out.read_text()) for out in outs]
