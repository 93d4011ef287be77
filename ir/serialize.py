"""JSON round-trip for workflows.

Operators become a flat node list with integer ids (inputs by id), so the
DAG's sharing survives; expressions and small values nest as tagged objects
(`{"$": "Compare", ...}`). Decoding goes through the constructors, so a JSON
file is type-checked exactly like a freshly lowered workflow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from musketeer.ir import expr as E
from musketeer.ir import operators as O
from musketeer.ir import window as W
from musketeer.ir.schema import Field, Schema
from musketeer.ir.types import DataType, IRError, SourceLoc, parse_type

FORMAT_VERSION = 1

_VALUE_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (E.Col, E.Lit, E.Arith, E.Compare, E.And, E.Or, E.Not, E.Neg, E.IsNull, E.InList,
                E.Like, E.Case, E.Cast, E.Extract, E.Func, E.AggCall, E.Interval, O.ScanColumn,
                O.SortKey, SourceLoc, W.WindowCall, W.Frame, W.FrameBound)
}


def _encode(value: Any, ids: dict[int, int]) -> Any:
    if isinstance(value, O.Op):
        return {"$ref": ids[id(value)]}
    if isinstance(value, DataType):
        return {"$type": str(value)}
    if isinstance(value, Schema):
        return {"$schema": [[f.name, str(f.dtype), f.nullable] for f in value]}
    if isinstance(value, dt.datetime):
        return {"$timestamp": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, float) and value != value:
        return {"$float": "nan"}
    if isinstance(value, tuple):
        return [_encode(v, ids) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"$": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = _encode(getattr(value, f.name), ids)
        return out
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise IRError(f"cannot serialise {type(value).__name__}")


def _decode(value: Any, nodes: dict[int, O.Op]) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v, nodes) for v in value)
    if not isinstance(value, dict):
        return value
    if "$ref" in value:
        return nodes[value["$ref"]]
    if "$type" in value:
        return parse_type(value["$type"])
    if "$schema" in value:
        return Schema(tuple(Field(n, parse_type(t), bool(nl)) for n, t, nl in value["$schema"]))
    if "$date" in value:
        return dt.date.fromisoformat(value["$date"])
    if "$timestamp" in value:
        return dt.datetime.fromisoformat(value["$timestamp"])
    if "$float" in value:
        return float(value["$float"])
    cls = _VALUE_CLASSES.get(value.get("$", ""))
    if cls is None:
        raise IRError(f"unknown JSON node {value.get('$')!r}")
    return cls(**{k: _decode(v, nodes) for k, v in value.items() if k != "$"})


def encode_nodes(ops: list[O.Op]) -> list[dict[str, Any]]:
    """`ops` must list inputs before users (and While bodies before their While)."""
    ids: dict[int, int] = {}
    out = []
    for n, op in enumerate(ops):
        ids[id(op)] = n
        node: dict[str, Any] = {"id": n, "op": op.opname}
        for f in dataclasses.fields(op):
            node[f.name] = _encode(getattr(op, f.name), ids)
        out.append(node)
    return out


def decode_nodes(nodes_json: list[dict[str, Any]]) -> dict[int, O.Op]:
    nodes: dict[int, O.Op] = {}
    for node in nodes_json:
        cls = O.OPERATORS.get(node.get("op", ""))
        if cls is None:
            raise IRError(f"unknown operator {node.get('op')!r} in workflow JSON")
        kwargs = {k: _decode(v, nodes) for k, v in node.items() if k not in ("id", "op")}
        nodes[node["id"]] = cls(**kwargs)
    return nodes


def serial_order(roots: list[O.Op]) -> list[O.Op]:
    """Inputs before users, with each While's body nodes before the While."""
    order: list[O.Op] = []
    seen: set[int] = set()

    def add(root: O.Op) -> None:
        for op in O.walk(root, stop_at=seen):
            if id(op) in seen:
                continue
            if isinstance(op, O.While):
                for b in list(op.body) + ([op.stop] if op.stop is not None else []):
                    add(b)
            seen.add(id(op))
            order.append(op)

    for r in roots:
        add(r)
    return order
