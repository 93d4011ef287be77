"""Choose a backend per operator, then cut the DAG into stages.

The objective (`plan_seconds`) is what Musketeer minimises: for every
backend used, its startup once; for every operator, its cost on its backend;
for every operator whose output some other backend reads, the cost of
writing it to Parquet and reading it back there (once per reading backend).

`dp_assign` minimises it exactly with dynamic programming over a topological
order whose state is the backends of the "live" operators (produced, not yet
fully consumed) plus the set of backends used so far: query DAGs are narrow,
so the frontier stays small. (If it ever grows past BEAM states, the worst
are dropped: the search degrades to a beam search rather than blowing up.)
`exhaustive_assign` tries every assignment and is used for tiny DAGs and by
tests to check the DP.

Sinks are not choices: a sink runs where its input runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from musketeer.cost_model.cardinality import Cardinality
from musketeer.cost_model.costs import Profile, op_seconds, transfer_seconds
from musketeer.ir import operators as O
from musketeer.ir.workflow import Workflow

BEAM = 2_000  # states kept per step; planning time is part of what auto costs
EXHAUSTIVE_LIMIT = 50_000  # assignments; beyond this only the DP runs

Supports = Callable[[str, O.Op], bool]


@dataclass
class Stage:
    """Operators run together as one program on one backend.

    `inputs` are operators of earlier stages whose output this stage reads
    (from a Parquet file); `outputs` are this stage's operators that later
    stages read, plus its workflow sinks.
    """

    backend: str
    ops: list[O.Op]
    inputs: list[O.Op] = field(default_factory=list)
    outputs: list[O.Op] = field(default_factory=list)
    estimate: float = 0.0


@dataclass
class Plan:
    stages: list[Stage]
    total: float
    assignment: dict[int, str]

    @property
    def backends(self) -> list[str]:
        return list(dict.fromkeys(s.backend for s in self.stages))


class CostModel:
    """Everything the search needs about one workflow, computed once."""

    def __init__(self, workflow: Workflow, card: Cardinality, profile: Profile,
                 backends: Sequence[str], supports: Supports | None = None,
                 pinned: dict[int, str] | None = None) -> None:
        if not backends:
            raise ValueError("no backend to plan for")
        self.workflow = workflow
        self.card = card
        self.backends = list(backends)
        self.profile = profile
        ops = workflow.ops()
        self.nodes = [op for op in ops if not isinstance(op, O.Sink)]
        self.index = {id(op): n for n, op in enumerate(self.nodes)}
        self.sinks_of: dict[int, list[O.Sink]] = {}
        for s in workflow.sinks:
            self.sinks_of.setdefault(id(s.input), []).append(s)
        self.inputs = [[self.index[id(i)] for i in op.inputs] for op in self.nodes]
        consumers: list[list[int]] = [[] for _ in self.nodes]
        for n, ins in enumerate(self.inputs):
            for i in set(ins):
                consumers[i].append(n)
        self.consumers = consumers
        bps = [profile.get(b) for b in self.backends]
        self.startup = [bp.startup for bp in bps]
        pinned = pinned or {}
        self.cost = []  # cost[node][backend]: the operator plus its sinks
        for op in self.nodes:
            row = []
            for b, bp in zip(self.backends, bps):
                if (supports is not None and not supports(b, op)) or pinned.get(id(op), b) != b:
                    row.append(math.inf)
                    continue
                c = op_seconds(bp, op, card)
                c += sum(op_seconds(bp, s, card) for s in self.sinks_of.get(id(op), ()))
                row.append(c)
            self.cost.append(row)
        # A file is not shipped between engines: each reading backend scans it itself.
        self.transfer = [[[op_seconds(c, op, card) if isinstance(op, O.Scan) else transfer_seconds(p, c, op, card)
                           for c in bps] for p in bps] for op in self.nodes]

    def objective(self, assign: Sequence[int]) -> float:
        """plan_seconds for backend indices per node."""
        total = sum(self.startup[b] for b in set(assign))
        for n, b in enumerate(assign):
            total += self.cost[n][b]
            readers = {assign[c] for c in self.consumers[n]} - {b}
            total += sum(self.transfer[n][b][r] for r in readers)
        return total


def dp_assign(model: CostModel) -> tuple[float, list[int]]:
    """Exact minimum of the objective by DP over the topological order.

    State: (backends used so far as a bit mask, ((node, backend, mask of
    backends it was shipped to), ...) for live nodes). Adding node v on
    backend b costs its operator, the startup of b if new, and for each
    input u on another backend that has not been shipped to b yet, the
    transfer u -> b.
    """
    nb = len(model.backends)
    remaining = [len(c) for c in model.consumers]
    states: dict[tuple[int, tuple[tuple[int, int, int], ...]], tuple[float, tuple[int, ...]]] = {(0, ()): (0.0, ())}
    for v in range(len(model.nodes)):
        ins = set(model.inputs[v])
        for u in ins:
            remaining[u] -= 1
        nxt: dict[tuple[int, tuple[tuple[int, int, int], ...]], tuple[float, tuple[int, ...]]] = {}
        for (used, live), (cost, assign) in states.items():
            for b in range(nb):
                c = model.cost[v][b]
                if c == math.inf:
                    continue
                c += cost + (0.0 if used >> b & 1 else model.startup[b])
                new_live = []
                for (u, ub, shipped) in live:
                    if u in ins and ub != b and not shipped >> b & 1:
                        c += model.transfer[u][ub][b]
                        shipped |= 1 << b
                    if remaining[u] > 0:
                        new_live.append((u, ub, shipped))
                if model.consumers[v]:
                    new_live.append((v, b, 0))
                key = (used | 1 << b, tuple(new_live))
                if key not in nxt or c < nxt[key][0]:
                    nxt[key] = (c, assign + (b,))
        if not nxt:
            raise ValueError(f"no available backend can run {model.nodes[v].opname}")
        if len(nxt) > BEAM:
            nxt = dict(sorted(nxt.items(), key=lambda kv: kv[1][0])[:BEAM])
        states = nxt
    best = min(states.values(), key=lambda cv: cv[0])
    return best[0], list(best[1])


def exhaustive_assign(model: CostModel) -> tuple[float, list[int]]:
    """Try every assignment: only for small DAGs (and to check the DP)."""
    best: tuple[float, list[int]] = (math.inf, [])
    for assign in itertools.product(range(len(model.backends)), repeat=len(model.nodes)):
        c = model.objective(assign)
        if c < best[0]:
            best = (c, list(assign))
    if best[0] == math.inf:
        raise ValueError("no available backend can run this workflow")
    return best


def cut_stages(model: CostModel, assign: Sequence[int]) -> list[Stage]:
    """Group operators into stages: an operator joins its inputs' stage when
    they run on the same backend; crossing to another backend starts a later
    "wave". Stage (backend, wave) pairs are therefore acyclic and run in wave
    order."""
    wave: list[int] = []
    for v, ins in enumerate(model.inputs):
        w = 0
        for u in ins:  # a Scan read from another backend is re-read here: no wave boundary
            same = assign[u] == assign[v] or isinstance(model.nodes[u], O.Scan)
            w = max(w, wave[u] + (0 if same else 1))
        wave.append(w)
    keys = sorted({(wave[v], assign[v]) for v in range(len(model.nodes))})
    stage_of = {k: n for n, k in enumerate(keys)}
    stages = [Stage(model.backends[b], []) for (_, b) in keys]
    seen_backends: set[int] = set()
    charged: dict[int, int] = {}  # backend -> the stage charged its start-up
    for v, op in enumerate(model.nodes):
        st = stages[stage_of[(wave[v], assign[v])]]
        st.ops.append(op)
        st.ops.extend(model.sinks_of.get(id(op), ()))
        st.outputs.extend(model.sinks_of.get(id(op), ()))
    for n, (w, b) in enumerate(keys):
        st = stages[n]
        est = 0.0 if b in seen_backends else model.startup[b]
        if b not in seen_backends:
            charged[b] = n
        seen_backends.add(b)
        members = [v for v in range(len(model.nodes)) if (wave[v], assign[v]) == (w, b)]
        for v in members:
            est += model.cost[v][b]
            for u in dict.fromkeys(model.inputs[v]):
                if stage_of[(wave[u], assign[u])] != n and isinstance(model.nodes[u], O.Scan):
                    if model.nodes[u] not in st.ops:  # scanned again here, not shipped
                        st.ops.insert(0, model.nodes[u])
                        est += model.transfer[u][assign[u]][b]
                elif stage_of[(wave[u], assign[u])] != n and model.nodes[u] not in st.inputs:
                    st.inputs.append(model.nodes[u])
                    est += model.transfer[u][assign[u]][b]
                    producer = stages[stage_of[(wave[u], assign[u])]]
                    if model.nodes[u] not in producer.outputs:
                        producer.outputs.insert(0, model.nodes[u])
        st.estimate = est
    # A stage left with only Scans that other stages re-read produces nothing.
    kept = [s for s in stages if s.outputs]
    # If that stage was the one charged its engine's start-up, the engine's
    # first kept stage pays it, so the stages add up to the plan's total.
    for b, n in charged.items():
        if not stages[n].outputs:
            first = next((s for s in kept if s.backend == model.backends[b]), None)
            if first is not None:
                first.estimate += model.startup[b]
    return kept


def plan(workflow: Workflow, card: Cardinality, profile: Profile, backends: Sequence[str],
         supports: Supports | None = None, exhaustive: bool | None = None,
         pinned: dict[int, str] | None = None) -> Plan:
    """The cheapest plan over `backends` (only pass available ones)."""
    backends = _prune(workflow, card, profile, list(backends), supports, pinned)
    model = CostModel(workflow, card, profile, backends, supports, pinned)
    single = _single_if_optimal(model)
    if single is not None and exhaustive is None:
        total, assign = single
    else:
        if exhaustive is None:
            exhaustive = len(backends) ** len(model.nodes) <= 64
        total, assign = exhaustive_assign(model) if exhaustive else dp_assign(model)
    stages = cut_stages(model, assign)
    return Plan(stages, total, {id(op): model.backends[b] for op, b in zip(model.nodes, assign)})


def _single_if_optimal(model: CostModel) -> tuple[float, list[int]] | None:
    """The best one-backend plan, when no mixed plan can beat it: every plan
    costs at least the cheapest start-up plus each operator at its cheapest
    (transfers only add). When the best single backend reaches that bound,
    searching is pointless; this is the common case (one engine is cheapest
    for every operator) and saves the DP's time in `--backend auto`."""
    n = len(model.nodes)
    singles = [(model.objective([b] * n), b) for b in range(len(model.backends))]
    best, b = min(singles)
    if best == math.inf:
        return None
    bound = min(model.startup) + sum(min(row) for row in model.cost)
    return (best, [b] * n) if best <= bound * (1 + 1e-12) else None


def _prune(workflow: Workflow, card: Cardinality, profile: Profile, backends: list[str],
           supports: Supports | None, pinned: dict[int, str] | None) -> list[str]:
    """Drop backends whose start-up alone costs more than running everything
    on the best single backend: no plan using them can win, and the DP's
    state space shrinks with every backend (planning time is part of what
    `--backend auto` costs). Exact: every plan pays the start-up of each
    backend it uses."""
    if len(backends) < 2 or pinned:
        return backends
    best = min(single_backend_seconds(workflow, card, profile, b, supports) for b in backends)
    kept = [b for b in backends if profile.get(b).startup <= best]
    return kept or backends


def single_backend_seconds(workflow: Workflow, card: Cardinality, profile: Profile, backend: str,
                           supports: Supports | None = None) -> float:
    """The estimate for running the whole workflow on one backend."""
    model = CostModel(workflow, card, profile, [backend], supports)
    return model.objective([0] * len(model.nodes))
