"""Per-backend cost: startup + per-operator per-row rates + materialisation.

Why a linear model: the planner compares engines whose behaviour differs
mostly in fixed overhead (a Spark session costs seconds before any row is
read) and in per-row throughput (Spark and Dask use every core; the local
engine is one pandas process). A line per operator kind captures that and is
cheap to fit from a handful of microbenchmarks (`musketeer calibrate`).
The local engine also degrades sharply once its working set exceeds memory,
which `memory_bytes`/`spill_factor` model.

Profiles live in a JSON (or TOML) file: `--profile PATH`, else
$MUSKETEER_PROFILE, else `~/.config/musketeer/profile.json` (honouring
$XDG_CONFIG_HOME); the shipped defaults below fill anything missing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musketeer.cost_model.cardinality import Cardinality
from musketeer.ir import operators as O
from musketeer.ir.types import MusketeerError

PROFILE_VERSION = 1
PROFILE_ENV = "MUSKETEER_PROFILE"

#: Operator class -> rate key in a profile.
RATE_KEY: dict[type[O.Op], str] = {
    O.Scan: "scan", O.Filter: "filter", O.Project: "project", O.Join: "join",
    O.Aggregate: "aggregate", O.Distinct: "aggregate", O.Sort: "sort", O.Limit: "limit",
    O.Union: "setop", O.Intersect: "setop", O.Except: "setop", O.UDF: "udf", O.Sink: "sink",
    O.LoopVar: "limit", O.Window: "sort",
}
RATE_KEYS = ("scan", "filter", "project", "join", "aggregate", "agg_expr", "sort", "limit", "setop", "udf", "sink")


@dataclass(frozen=True)
class BackendProfile:
    """How fast one engine is on this machine.

    `rates` are seconds per input row for each operator kind (a join counts
    both inputs plus its output; an Aggregate pays `aggregate` once per
    input row plus `agg_expr` per input row for each aggregate beyond the
    first, since engines differ most in how they compute many aggregates); `read_byte`/`write_byte` are seconds per
    byte to read/write a stage's Parquet file; `loop_overhead` is seconds per
    While iteration (scheduling, job submission); `op_overhead` is fixed
    seconds per operator whatever its size (a Spark job stage, a dask graph
    layer, CIEL task dispatch), which is what makes a 20-operator query cost
    more than a 3-operator one on tiny data. Loops add what an engine pays
    again every iteration because it re-plans and re-schedules the body:
    `loop_stage_overhead` seconds per stage of the body per iteration (a
    stage ends at every operator that exchanges rows between partitions:
    joins, aggregates, distincts, sorts, set operations; dask builds and
    computes a new task graph with those shuffles every iteration, CIEL
    spawns their tasks again, the local engine only makes Python calls) and `loop_row` seconds
    per loop-variable row per iteration (persisting and re-partitioning the
    loop variable for the body's joins). `startup` is what a user pays
    once per `musketeer run` before any row is read (interpreter, engine
    import, session or worker start).
    """

    startup: float
    rates: dict[str, float]
    read_byte: float = 2e-9
    write_byte: float = 4e-9
    loop_overhead: float = 0.0
    op_overhead: float = 0.0
    loop_stage_overhead: float = 0.0
    loop_row: float = 0.0
    memory_bytes: float | None = None  # working set beyond which spill_factor applies
    spill_factor: float = 1.0

    def rate(self, key: str) -> float:
        return self.rates.get(key, self.rates.get("project", 1e-7))


def _physical_memory() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8e9


def profile_from_defaults(name: str, declared: dict[str, Any]) -> BackendProfile:
    """A BackendProfile from a backend descriptor's `default_profile` (plain
    data: BackendProfile fields, `memory_fraction` of physical RAM in place
    of `memory_bytes`). Missing rates are the `project` rate's."""
    values = dict(declared)
    fraction = values.pop("memory_fraction", None)
    if fraction is not None:
        values["memory_bytes"] = _physical_memory() * float(fraction)
    values.setdefault("startup", 0.0)
    values["rates"] = {k: float(v) for k, v in (values.get("rates") or {}).items()}
    names = {f.name for f in dataclasses.fields(BackendProfile)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"backend {name!r}: unknown default profile keys {sorted(unknown)}")
    return BackendProfile(**values)


def default_profiles() -> dict[str, BackendProfile]:
    """Shipped defaults: what each registered backend's descriptor declares
    (`default_profile` in backends/<name>/__init__.py; backends/registry.py).

    The built-ins' numbers are `musketeer calibrate` as measured on the
    project's 2-core dev VM on 2026-11-21 (local and dask at 1M/3M rows,
    17:18 UTC, load average ~3-4; spark and ciel at 100k/500k rows, 17:15
    UTC, load ~2.5; pyspark in local[*], CIEL with its default local
    workers); loop costs (local, dask, ciel) from `musketeer calibrate
    --loops-only` at 200k/1M rows, 18:13 UTC, load ~4.5-8. The raw profile
    is benchmarks/results/calibrated_profile_loopstages.json; how well auto
    chooses with it is in benchmarks/README.md. Not measured (earlier
    guesses): setop and udf rates, read/write bytes. Start-up is a whole
    `musketeer run` process on a tiny table (interpreter and imports
    included, which every engine pays). Re-run `musketeer calibrate` on
    your machine: these numbers are this VM's.
    """
    from musketeer.backends import registry

    return {name: profile_from_defaults(name, declared) for name, declared in registry.default_profiles().items()}


@dataclass
class Profile:
    """Backend name -> BackendProfile, plus where it came from (for explain)."""

    backends: dict[str, BackendProfile] = field(default_factory=default_profiles)
    source: str = "shipped defaults"

    def get(self, backend: str) -> BackendProfile:
        if backend not in self.backends:  # a new engine nobody calibrated: assume local-like
            return self.backends.get("local") or default_profiles()["local"]
        return self.backends[backend]

    def to_dict(self) -> dict[str, Any]:
        return {"version": PROFILE_VERSION,
                "backends": {name: dataclasses.asdict(bp) for name, bp in self.backends.items()}}


def default_profile_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "musketeer" / "profile.json"


def profile_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--profile, else $MUSKETEER_PROFILE, else the user config file."""
    if explicit:
        return Path(explicit)
    if os.environ.get(PROFILE_ENV):
        return Path(os.environ[PROFILE_ENV])
    return default_profile_path()


def load_profile(path: str | os.PathLike[str] | None = None) -> Profile:
    """The profile at `path` (or the default location) over the shipped
    defaults. A missing default file means defaults; a missing explicit
    file, or a malformed one, is a one-line error."""
    where = profile_path(path)
    explicit = bool(path) or bool(os.environ.get(PROFILE_ENV))
    if not where.exists():
        if explicit:
            raise MusketeerError(f"profile file {where} does not exist (create it with `musketeer calibrate`)")
        return Profile()
    try:
        text = where.read_text(encoding="utf-8")
        data = tomllib.loads(text) if where.suffix.lower() == ".toml" else json.loads(text)
        return profile_from_dict(data, str(where))
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise MusketeerError(f"profile file {where} is not a valid Musketeer profile: {e}") from None


def profile_from_dict(data: dict[str, Any], source: str) -> Profile:
    if data.get("version", PROFILE_VERSION) != PROFILE_VERSION:
        raise ValueError(f"unsupported version {data.get('version')!r}")
    merged = default_profiles()
    names = {f.name for f in dataclasses.fields(BackendProfile)}
    for name, raw in (data.get("backends") or {}).items():
        unknown = set(raw) - names
        if unknown:
            raise ValueError(f"backend {name!r}: unknown keys {sorted(unknown)}")
        base = merged.get(name) or merged["local"]
        rates = {**base.rates, **{k: float(v) for k, v in (raw.get("rates") or {}).items()}}
        values = {k: v for k, v in raw.items() if k != "rates"}
        for k, v in values.items():
            if v is not None and (not isinstance(v, (int, float)) or v < 0 or math.isnan(v)):
                raise ValueError(f"backend {name!r}: {k} must be a non-negative number")
        merged[name] = dataclasses.replace(base, rates=rates, **values)
    return Profile(merged, source)


def save_profile(profile: Profile, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temporary sibling + rename): a crash leaves the old file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(profile.to_dict(), f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


# --- costing operators ----------------------------------------------------------

def op_seconds(bp: BackendProfile, op: O.Op, card: Cardinality) -> float:
    """Estimated seconds for one operator on one backend (startup excluded)."""
    if isinstance(op, O.While):
        return loop_seconds(bp, op, card)
    out = card[op]
    inputs = [card[i] for i in op.inputs]
    in_rows = sum(e.rows for e in inputs)
    in_bytes = sum(e.bytes for e in inputs)
    key = RATE_KEY.get(type(op), "project")
    if isinstance(op, O.Scan):
        work = out.rows * bp.rate("scan") + out.bytes * bp.read_byte
    elif isinstance(op, O.Join):
        work = (in_rows + out.rows) * bp.rate("join")
        in_bytes += out.bytes
    elif isinstance(op, O.Sort):
        n = max(out.rows, 2.0)
        work = n * math.log2(n) / 20 * bp.rate("sort")
    elif isinstance(op, O.Aggregate):
        work = in_rows * (bp.rate("aggregate") + max(0, len(op.aggs) - 1) * bp.rate("agg_expr"))
    elif isinstance(op, O.Window):  # a sort by partition and order keys, then one pass per call
        n = max(in_rows, 2.0)
        work = n * math.log2(n) / 20 * bp.rate("sort") + in_rows * len(op.calls) * bp.rate("agg_expr")
    elif isinstance(op, O.Sink):
        work = out.rows * bp.rate("sink") + (out.bytes * bp.write_byte if op.path else 0.0)
    else:
        work = in_rows * bp.rate(key)
    if bp.memory_bytes is not None and max(in_bytes, out.bytes) > bp.memory_bytes:
        work *= bp.spill_factor
    return work + bp.op_overhead


#: Operators that exchange rows between partitions: each ends a stage.
EXCHANGES = (O.Join, O.Aggregate, O.Distinct, O.Sort, O.Union, O.Intersect, O.Except, O.Window)


def body_operators(ops: tuple[O.Op, ...]) -> list[O.Op]:
    """The operators of a While body an engine runs each iteration
    (a LoopVar is a name for last iteration's result, not work)."""
    return [b for b in ops if not isinstance(b, O.LoopVar)]


def body_stages(ops: tuple[O.Op, ...]) -> int:
    """Stages of a While body: one per exchange, and at least one (the
    operators that run partition by partition are fused into them)."""
    return max(1, sum(isinstance(b, EXCHANGES) for b in ops))


def loop_seconds(bp: BackendProfile, op: O.While, card: Cardinality) -> float:
    """Iterations x (the body's operators, each also paying the per-iteration
    re-scheduling cost, plus carrying the loop variables to the next one)."""
    loop = card.loops.get(id(op))
    if loop is None:
        return 0.0
    body = body_operators(loop.ops)
    var_rows = sum(card[b].rows for b in loop.ops if isinstance(b, O.LoopVar))
    per_iter = (bp.loop_overhead + sum(op_seconds(bp, b, card) for b in body)
                + body_stages(loop.ops) * bp.loop_stage_overhead + var_rows * bp.loop_row)
    return loop.iterations * per_iter


def transfer_seconds(producer: BackendProfile, consumer: BackendProfile, op: O.Op, card: Cardinality) -> float:
    """Cost of cutting the edge after `op`: write its output to Parquet on
    the producer, read it back on the consumer."""
    b = card[op].bytes
    return b * (producer.write_byte + consumer.read_byte)


def workflow_seconds(bp: BackendProfile, ops: list[O.Op], card: Cardinality) -> float:
    """Everything on one backend: startup once plus every operator."""
    return bp.startup + sum(op_seconds(bp, op, card) for op in ops)
