"""Musketeer's diagnostics through the `logging` module.

Three verbosities, set once by the CLI's `-q` / `-v` (`configure`):

- `-q`: warnings and errors only (no progress, no notes);
- default: notes such as `wrote 12 rows to out.csv` and progress;
- `-v`: also what the engines print while they run (the JVM's and Spark's
  WARN lines, dask's), which otherwise would leak onto the terminal
  between Musketeer's own lines.

Engines write that chatter straight to the process's standard error
(file descriptor 2: the JVM does not know about Python's sys.stderr), so
`engine_output` points descriptor 2 at a temporary file while an engine
runs and then logs each line at DEBUG, or at WARNING when it reports an
error. Everything logs under the `musketeer` logger; a program embedding
Musketeer configures logging as it likes and gets the same records.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

LOGGER = logging.getLogger("musketeer")
QUIET, NORMAL, VERBOSE = -1, 0, 1

_verbosity = NORMAL
_handler: logging.Handler | None = None

#: An engine's line that reports a failure, or a Python warning (`x.py:3:
#: UserWarning: ...`, from the user's code too), is shown even without -v.
_ERROR_LINE = re.compile(r"\b(ERROR|FATAL|SEVERE|Exception|Error:|[A-Z]\w*Warning:)")


def verbosity() -> int:
    return _verbosity


def quiet() -> bool:
    return _verbosity <= QUIET


def configure(level: int = NORMAL, stream=None) -> None:
    """Set the verbosity (QUIET, NORMAL, VERBOSE or more) and send the
    `musketeer` logger's records to `stream` (stderr) as `musketeer: ...`."""
    global _verbosity, _handler
    _verbosity = level
    if _handler is not None:
        LOGGER.removeHandler(_handler)
    _handler = logging.StreamHandler(stream or sys.stderr)
    _handler.setFormatter(logging.Formatter("musketeer: %(message)s" if level < VERBOSE + 1
                                            else "musketeer: %(name)s: %(levelname)s: %(message)s"))
    threshold = logging.WARNING if level <= QUIET else logging.INFO if level == NORMAL else logging.DEBUG
    _handler.setLevel(threshold)  # also for records of a child logger set lower (a test's caplog)
    LOGGER.addHandler(_handler)
    LOGGER.setLevel(threshold)
    # py4j says INFO when the Spark gateway closes: only with -v -v
    logging.getLogger("py4j").setLevel(logging.DEBUG if level > VERBOSE else logging.WARNING)


@contextlib.contextmanager
def engine_output(engine: str) -> Iterator[None]:
    """Capture what is written to file descriptor 2 inside the block and log
    it under `musketeer.engine.<engine>` when the block ends."""
    log = LOGGER.getChild(f"engine.{engine}")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real descriptor 2 (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for raw in sink.read().decode("utf-8", "replace").splitlines():
                line = raw.rstrip()
                if line:
                    log.log(logging.WARNING if _ERROR_LINE.search(line) else logging.DEBUG, "%s: %s", engine, line)


def terminal_stream(stream):
    """A writable file on the same terminal as `stream` that `engine_output`
    does not capture (a duplicate of its descriptor), for live progress."""
    try:
        return os.fdopen(os.dup(stream.fileno()), "w", buffering=1)
    except (OSError, ValueError, AttributeError):
        return stream
