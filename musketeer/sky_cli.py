"""`musketeer sky run script.sky`: run a Skywriting script on a ciel cluster.

The whole script runs as tasks (its top level is the root task; every
blocked `*` a continuation), so the driver only submits it and waits for
the root's value, printing it as JSON (futures in it are dereferenced
first). Without --ciel-master a local cluster of --workers workers is
started and closed at the end. Script errors, found while parsing or on a
worker, are `file:line:col: error: message` with exit 2. While waiting,
a progress line (tasks done / running) shows on a terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

TOKEN_ENV = "MUSKETEER_CIEL_TOKEN"


def register(sub: Any) -> None:
    """Add the `sky` command group to the top-level subparsers."""
    group = sub.add_parser("sky", help="run Skywriting scripts on the ciel engine")
    cmds = group.add_subparsers(dest="sky_command", metavar="COMMAND", required=True)
    r = cmds.add_parser("run", help="run a script and print its result")
    r.add_argument("script", help="a Skywriting script (.sky or .sw)")
    r.add_argument("--arg", dest="script_args", action="append", default=[], metavar="K=V", type=_kv,
                   help="env[\"K\"] = \"V\" in the script (repeatable)")
    r.add_argument("--ciel-master", metavar="HOST:PORT",
                   help=f"run on this ciel master (token: ${TOKEN_ENV}); default: a local cluster")
    r.add_argument("--workers", type=int, default=2, metavar="N", help="workers of the local cluster (default 2)")
    r.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="show tasks done/running while waiting (auto: when stderr is a terminal)")
    r.set_defaults(handler=cmd_run, table_bindings=[])


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key, value


def script_error(text: str) -> Any:
    """The located SkyError behind a failed task's traceback text, or None."""
    from musketeer.frontends.skywriting import SkyError
    from musketeer.ir.types import SourceLoc
    from musketeer.sky_tasks import FAILED_LINE

    found = FAILED_LINE.search(text)
    if found is None:
        return None
    return SkyError(found.group(4).strip(), SourceLoc(found.group(1), int(found.group(2)), int(found.group(3))))


def resolve(client: Any, value: Any) -> Any:
    """The value with every future in it replaced by the future's value."""
    from musketeer.backends.ciel.engine.api import Ref
    from musketeer.frontends.skywriting import Future

    for _ in range(1000):  # a future's value may hold futures again
        futures: list[Any] = []

        def collect(v: Any) -> None:
            if isinstance(v, Future):
                futures.append(v)
            elif isinstance(v, list):
                for x in v:
                    collect(x)
            elif isinstance(v, dict):
                for x in v.values():
                    collect(x)
        collect(value)
        if not futures:
            return value
        got = dict(zip([f.id for f in futures], client.deref_many([Ref(f.id) for f in futures])))

        def replace(v: Any) -> Any:
            if isinstance(v, Future):
                return got[v.id]
            if isinstance(v, list):
                return [replace(x) for x in v]
            if isinstance(v, dict):
                return {k: replace(x) for k, x in v.items()}
            return v
        value = replace(value)
    return value


def run_script(path: str, env: dict[str, str], client: Any, progress: bool = False) -> Any:
    """Submit the script's top level as a task; its result, futures resolved."""
    from musketeer import sky_tasks
    from musketeer.backends.ciel.engine.api import ClusterLost, TaskError
    from musketeer.frontends import skywriting

    code = skywriting.load(path)
    vm = skywriting.start(code, env)
    root = client.spawn(sky_tasks.run_script, vm)
    stop = threading.Event()
    if progress:
        threading.Thread(target=_show_progress, args=(client, stop), daemon=True).start()
    try:
        return resolve(client, client.deref(root))
    except ClusterLost:
        raise
    except TaskError as exc:
        error = script_error(str(exc))
        if error is None:
            raise
        raise error from exc
    finally:
        stop.set()


def _show_progress(client: Any, stop: threading.Event) -> None:
    """After a second: a live status line on a terminal, else a plain line
    every few seconds (--progress always into a file or pipe)."""
    from rich.console import Console

    console = Console(stderr=True)
    if stop.wait(1.0):
        return  # short jobs show nothing
    start = time.monotonic()

    def line() -> str | None:
        try:
            tasks = client.info(timeout=5)["tasks"]
        except Exception:  # noqa: BLE001 - progress is best effort
            return None
        return (f"skywriting: {tasks.get('done', 0)} tasks done, {tasks.get('running', 0)} running, "
                f"{tasks.get('ready', 0) + tasks.get('pending', 0)} waiting ({time.monotonic() - start + 1:.0f} s)")

    if not console.is_terminal:
        while True:
            text = line()
            if text is not None:
                print(text, file=sys.stderr, flush=True)
            if stop.wait(3.0):
                return
    with console.status("") as status:
        while not stop.wait(0.5):
            text = line()
            if text is not None:
                status.update(text)


def cmd_run(args: argparse.Namespace) -> int:
    from musketeer.backends.ciel.engine.api import Client, ClusterLost
    from musketeer.backends.ciel.engine.cluster import Cluster
    from musketeer.backends.ciel.runner import WorkersLost
    from musketeer.frontends import skywriting
    from musketeer.ir.types import MusketeerError

    skywriting.load(args.script)  # a script that does not parse fails before any cluster starts
    env = dict(args.script_args)
    from musketeer.logs import quiet

    progress = not quiet() and (args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty()))
    cluster = None
    try:
        if args.ciel_master:
            client = Client(args.ciel_master, os.environ.get(TOKEN_ENV))
        else:
            if args.workers < 1:
                raise MusketeerError("--workers must be at least 1")
            try:
                cluster = Cluster(workers=args.workers).start()
            except ClusterLost as exc:
                raise WorkersLost(str(exc)) from exc
            client = cluster.client()
        try:
            result = run_script(args.script, env, client, progress)
        except ClusterLost as exc:
            raise WorkersLost(str(exc)) from exc
        finally:
            if cluster is None:
                client.forget()
                client.close()
    finally:
        if cluster is not None:
            cluster.close()
    print(skywriting.show(result))
    return 0
