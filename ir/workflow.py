"""A workflow: the DAG of operators ending in one or more Sinks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

from musketeer.ir import operators as O
from musketeer.ir.serialize import FORMAT_VERSION, decode_nodes, encode_nodes, serial_order
from musketeer.ir.text import ops_text
from musketeer.ir.types import IRError


@dataclass(frozen=True, eq=False)
class Workflow:
    """`sinks` are the outputs; the sink named 'result' (if any) is what
    `musketeer run` prints or writes to --output."""

    sinks: tuple[O.Sink, ...]
    name: str = "workflow"

    def __post_init__(self) -> None:
        names = [s.name for s in self.sinks]
        if len(set(names)) != len(names):
            raise IRError(f"duplicate output names: {names}")
        if not self.sinks:
            raise IRError("a workflow needs at least one output")

    @property
    def result(self) -> O.Sink | None:
        for s in self.sinks:
            if s.name == "result":
                return s
        return None

    def ops(self) -> list[O.Op]:
        """Top-level operators, inputs before users (While bodies are nested)."""
        order: list[O.Op] = []
        seen: set[int] = set()
        for sink in self.sinks:
            for op in O.walk(sink):
                if id(op) not in seen:
                    seen.add(id(op))
                    order.append(op)
        return order

    def __iter__(self) -> Iterator[O.Op]:
        return iter(self.ops())

    def consumers(self) -> dict[int, list[O.Op]]:
        out: dict[int, list[O.Op]] = {}
        for op in self.ops():
            for i in op.inputs:
                out.setdefault(id(i), []).append(op)
        return out

    def replace_sinks(self, sinks: list[O.Sink]) -> "Workflow":
        return Workflow(tuple(sinks), self.name)

    # --- serialisation -----------------------------------------------------
    def to_text(self, with_schema: bool = True) -> str:
        return "\n".join(ops_text(list(self.sinks), with_schema=with_schema)) + "\n"

    def to_dict(self) -> dict[str, Any]:
        order = serial_order(list(self.sinks))
        index = {id(op): n for n, op in enumerate(order)}
        return {
            "musketeer_ir": FORMAT_VERSION,
            "name": self.name,
            "nodes": encode_nodes(order),
            "sinks": [index[id(s)] for s in self.sinks],
        }

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Workflow":
        data = json.loads(text)
        if data.get("musketeer_ir") != FORMAT_VERSION:
            raise IRError(f"unsupported workflow JSON version {data.get('musketeer_ir')!r}")
        nodes = decode_nodes(data["nodes"])
        sinks = []
        for i in data["sinks"]:
            s = nodes[i]
            if not isinstance(s, O.Sink):
                raise IRError(f"workflow JSON output {i} is not a Sink")
            sinks.append(s)
        return cls(tuple(sinks), data.get("name", "workflow"))

    def to_dot(self) -> str:
        """Graphviz DOT: one box per top-level operator, edges in data-flow order."""
        lines = [f'digraph "{_dot_escape(self.name)}" {{', "  rankdir=BT;", "  node [shape=box, fontname=monospace];"]
        ids: dict[int, str] = {}
        for n, op in enumerate(self.ops()):
            ids[id(op)] = f"n{n}"
            label = op.opname if not isinstance(op, (O.Scan, O.Sink)) else f"{op.opname} {getattr(op, 'table', getattr(op, 'name', ''))}"
            if isinstance(op, O.While):
                label += f" ({', '.join(op.names)})"
            lines.append(f'  n{n} [label="{_dot_escape(label)}"];')
            for i in op.inputs:
                lines.append(f"  {ids[id(i)]} -> n{n};")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
