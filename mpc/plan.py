"""The split plan: what each party runs in the clear, what runs under MPC,
what a selectively trusted party (STP) computes, and who learns what.

The text form (`SplitPlan.to_text`) is what `musketeer mpc explain` prints
and what the golden tests compare, so it names every operator by the same
`%N` it has in the whole workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musketeer.ir import operators as O
from musketeer.ir.text import op_args
from musketeer.ir.workflow import Workflow
from musketeer.mpc.trust import RelInfo

PUBLIC_PLACE = "public"
SECRET_PLACE = "secret"


@dataclass
class Placement:
    """Where each column of a relation lives at run time, and whether some
    rows are dropped by a secret 0/1 mask rather than in the clear."""

    cols: dict[str, str]  # name -> "public" | "secret" | party name (held in the clear)
    masked: bool = False
    # public value sets known from the query text (literals), per column:
    # grouping on such a secret column is a one-hot over the domain
    domains: dict[str, tuple] = field(default_factory=dict)


@dataclass(frozen=True)
class Leak:
    """One thing a party sees in the clear beyond its own inputs. `text` is
    also the label the runtime records when the value actually arrives."""

    party: str
    kind: str  # "size" | "nulls" (whether an input column has NULLs) | "public" | "stp" | "output" | "pad"
    text: str
    columns: tuple[str, ...] = ()
    op: str = ""  # %N of the relation the columns belong to


@dataclass
class LocalStage:
    """A party's cleartext sub-workflow; `outputs` maps sink name -> the
    operator whose rows enter MPC (or go to the recipients directly)."""

    party: str
    workflow: Workflow
    outputs: dict[str, O.Op]
    pushup: bool = False  # a recipient's post-MPC work


@dataclass
class SecureStep:
    op: O.Op
    mode: str  # concat, elementwise, oblivious, public, hybrid, global, cross
    stp: str | None = None
    # oblivious grouping: the public key domain (one-hot), or None (sort-based)
    domain: tuple | None = None
    # an oblivious join feeding only an oblivious SUM/COUNT/AVG aggregate keyed on
    # one side: the join stays a secret key-match matrix (never n*m rows)
    fused: bool = False

    @property
    def label(self) -> str:
        if self.mode == "oblivious" and isinstance(self.op, O.Aggregate) and self.op.keys:
            how = f"one-hot over {len(self.domain)} public keys" if self.domain is not None else "sort-based"
            return f"oblivious, {how}" + (", over the join's match matrix" if self.fused else "")
        if self.fused:
            return "oblivious, match matrix only (fused into the aggregate)"
        return self.mode + (f", stp {self.stp}" if self.stp else "")


@dataclass
class SplitPlan:
    parties: tuple[str, ...]
    recipients: tuple[str, ...]
    workflow: Workflow  # after push-down
    ref: dict[int, str]  # op id -> %N
    local: list[LocalStage]
    inputs: dict[int, tuple[str, str]]  # boundary op id -> (party, sink name)
    secure: list[SecureStep]
    reveal: O.Op  # relation revealed to the recipients
    pushup: LocalStage | None
    leaks: list[Leak] = field(default_factory=list)
    mpc_only: bool = False
    # op id -> where its columns live at run time (the engine follows it)
    places: dict[int, Placement] = field(default_factory=dict)
    # op id -> owners and per-column trust sets (what the leakage checks read)
    info: dict[int, RelInfo] = field(default_factory=dict)

    def leakage(self, party: str) -> list[Leak]:
        return [leak for leak in self.leaks if leak.party == party]

    def to_text(self) -> str:
        ref = self.ref
        lines = [f"split plan: parties {', '.join(self.parties)}; recipients {', '.join(self.recipients)}"
                 + ("; mpc-only" if self.mpc_only else "")]
        n = 0

        def header(text: str) -> None:
            nonlocal n
            n += 1
            lines.append(f"stage {n}: {text}")

        for st in self.local:
            header(f"local @{st.party}")
            for op in st.workflow.ops():
                if isinstance(op, O.Sink):
                    continue
                lines.append(f"  {ref[id(op)]} = {op.opname}({op_args(op, ref)}) -> {op.schema}")
            for name, op in st.outputs.items():
                lines.append(f"  share {ref[id(op)]} as {name}")
        secure_open = False
        for step in self.secure:
            if step.mode == "hybrid":
                keys = _keys(step.op)
                header(f"stp @{step.stp}")
                lines.append(f"  {step.op.opname.lower()} {ref[id(step.op)]}: sees [{', '.join(keys)}] in the clear, "
                             f"returns {'index pairs' if isinstance(step.op, O.Join) else 'group one-hot'} secret-shared")
                secure_open = False
            if not secure_open:
                header(f"secure [{', '.join(self.parties)}]")
                secure_open = True
            op = step.op
            lines.append(f"  {ref[id(op)]} = {op.opname}({op_args(op, ref)}) -> {op.schema}  [{step.label}]")
        if not secure_open:
            header(f"secure [{', '.join(self.parties)}]")
        lines.append(f"  reveal {ref[id(self.reveal)]} to {', '.join(self.recipients)}")
        if self.pushup is not None:
            header(f"local @{', '.join(self.recipients)} (push-up)")
            for op in self.pushup.workflow.ops():
                if isinstance(op, (O.Sink, O.Scan)):
                    continue
                lines.append(f"  {ref[id(op)]} = {op.opname}({op_args(op, ref)}) -> {op.schema}")
        lines.append("leakage (seen in the clear beyond own inputs):")
        for p in self.parties:
            mine = self.leakage(p)
            lines.append(f"  {p}: " + ("nothing" if not mine else ""))
            for leak in mine:
                lines.append(f"    - {leak.text}")
        return "\n".join(lines) + "\n"


def _keys(op: O.Op) -> list[str]:
    if isinstance(op, O.Join):
        return [*op.left_keys, *op.right_keys]
    if isinstance(op, O.Aggregate):
        return list(op.keys)
    return []
