"""Can Spark run here? pyspark, a Java runtime, and (when asked for) a reachable master.

Each check answers in one line that says what was found and what to do,
never with a traceback: `musketeer run --backend spark` prints it as is.
The Java probe runs `java -version` once per process (it takes ~100 ms);
the master probe is a plain TCP connect with a short timeout, so a typo in
`--spark-master` fails in a second instead of after Spark's retries.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import socket
import subprocess

MIN_JAVA = 17
CONNECT_TIMEOUT = 2.0  # seconds per master address
_MASTER_RE = re.compile(r"local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|yarn|(spark|k8s|mesos)://.+")


def pyspark_problem() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed: pip install 'musketeer[spark]'"
    return None


def _java_binary() -> tuple[str | None, str]:
    """The java Spark will launch ($JAVA_HOME/bin/java first, as spark-submit does), and where it came from."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate, f"JAVA_HOME={home}"
        return None, f"JAVA_HOME={home} has no bin/java"
    found = shutil.which("java")
    return found, "PATH"


def parse_java_version(text: str) -> int | None:
    """The major version in `java -version` output: 'version "17.0.2"' -> 17, '"1.8.0_292"' -> 8."""
    found = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


@functools.lru_cache(maxsize=1)
def java_problem() -> str | None:
    """None when a Java >= MIN_JAVA is there; else what was found and what to install."""
    java, origin = _java_binary()
    install = f"install a Java {MIN_JAVA}+ runtime (e.g. apt-get install openjdk-{MIN_JAVA}-jre-headless) " \
              f"and put it on PATH or set JAVA_HOME"
    if java is None:
        return f"Spark needs Java {MIN_JAVA} or newer and no java was found ({origin}): {install}"
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"Spark needs Java {MIN_JAVA} or newer; running {java} -version failed ({exc}): {install}"
    version = parse_java_version(done.stderr + done.stdout)
    if version is None:
        return f"Spark needs Java {MIN_JAVA} or newer; cannot tell the version of {java}: {install}"
    if version < MIN_JAVA:
        return f"Spark needs Java {MIN_JAVA} or newer, found Java {version} at {java}: {install}"
    return None


def master_problem(master: str | None) -> str | None:
    """None for a usable master URL; for spark://HOST:PORT[,HOST:PORT] at least one must accept a connection."""
    if master is None:
        return None
    if not _MASTER_RE.fullmatch(master):
        return f"--spark-master {master!r} is not a Spark master URL (use local[*] or spark://HOST:PORT)"
    if not master.startswith("spark://"):
        return None
    addresses = master[len("spark://"):].split(",")
    errors = []
    for address in addresses:
        host, sep, port = address.rstrip("/").rpartition(":")
        if not sep or not port.isdigit() or not host:
            return f"--spark-master {master!r}: expected spark://HOST:PORT"
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
                return None
        except OSError as exc:
            errors.append(f"{host}:{port} ({exc.strerror or exc})")
    return f"no Spark master answers at {master}: {'; '.join(errors)}; start it or check --spark-master"
