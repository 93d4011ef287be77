"""Diagnostics through `logging` (musketeer/logs.py): what an engine writes
straight to descriptor 2 (the JVM's WARN lines) is captured and logged,
shown with -v, hidden by default unless it reports an error; -q silences
progress notes."""

from __future__ import annotations

import io
import os

import pytest

from musketeer import logs
from musketeer.progress import Progress


@pytest.fixture()
def log_stream():
    stream = io.StringIO()
    yield stream
    logs.configure(logs.NORMAL)


def _engine_chatter() -> None:
    os.write(2, b"WARNING: Using incubator modules: jdk.incubator.vector\n")
    os.write(2, b"26/12/08 01:00:00 WARN NativeCodeLoader: Unable to load native-hadoop library\n")
    os.write(2, b"26/12/08 01:00:01 ERROR Executor: Exception in task 0.0\n")
    os.write(2, b"wf.py:3: UserWarning: the user's own warning\n")


def test_engine_output_is_captured_and_logged(log_stream, capfd) -> None:
    logs.configure(logs.VERBOSE, stream=log_stream)
    with logs.engine_output("spark"):
        _engine_chatter()
    assert capfd.readouterr().err == ""  # nothing leaked onto the terminal
    lines = log_stream.getvalue().splitlines()
    assert lines == ["musketeer: spark: WARNING: Using incubator modules: jdk.incubator.vector",
                     "musketeer: spark: 26/12/08 01:00:00 WARN NativeCodeLoader: Unable to load native-hadoop library",
                     "musketeer: spark: 26/12/08 01:00:01 ERROR Executor: Exception in task 0.0",
                     "musketeer: spark: wf.py:3: UserWarning: the user's own warning"]


def test_default_shows_only_engine_errors_and_quiet_hides_notes(log_stream, capfd) -> None:
    logs.configure(logs.NORMAL, stream=log_stream)
    with logs.engine_output("spark"):
        _engine_chatter()
    assert capfd.readouterr().err == ""
    assert log_stream.getvalue() == ("musketeer: spark: 26/12/08 01:00:01 ERROR Executor: Exception in task 0.0\n"
                                     "musketeer: spark: wf.py:3: UserWarning: the user's own warning\n")
    out = io.StringIO()
    Progress(2, out).note("[1/2] local: 0.1 s")
    assert out.getvalue() == "[1/2] local: 0.1 s\n"
    logs.configure(logs.QUIET, stream=log_stream)
    out = io.StringIO()
    Progress(2, out).note("[1/2] local: 0.1 s")
    assert out.getvalue() == ""
