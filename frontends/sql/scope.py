"""Relations under construction during lowering, and their name scopes.

SQL names columns by (qualifier, name); the IR needs one flat, unique name
per column. A `Rel` carries both: the IR operator and the mapping from SQL
names to IR column names. Joins rename clashing columns of one side so the
IR invariant (unique names per relation) always holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from musketeer.ir.expr import Col
from musketeer.ir.operators import Op, Project


@dataclass
class Rel:
    op: Op
    # (qualifier, column) -> IR column name; qualifier "" for a query's outputs
    cols: dict[tuple[str, str], str] = field(default_factory=dict)
    # SQL output names in order (for queries used as tables or as the result)
    names: list[str] = field(default_factory=list)

    def lookup(self, qualifier: str, name: str) -> str | None:
        key = (qualifier.lower(), name.lower())
        for (q, n), ir_name in self.cols.items():
            if (q.lower(), n.lower()) == key:
                return ir_name
        if not qualifier:
            hits = {ir for (q, n), ir in self.cols.items() if n.lower() == name.lower()}
            if len(hits) == 1:
                return hits.pop()
        return None

    def qualifiers(self) -> set[str]:
        return {q.lower() for q, _ in self.cols}

    def known_names(self) -> list[str]:
        return sorted({n for _, n in self.cols})


def fresh_name(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    k = 2
    while f"{base}_{k}" in taken:
        k += 1
    return f"{base}_{k}"


def make_disjoint(left: Rel, right: Rel) -> Rel:
    """Rename right's IR columns that clash with left's (a Project on the right)."""
    taken = set(left.op.schema.names)
    right_names = list(right.op.schema.names)
    if not taken.intersection(right_names):
        return right
    qual_of = {ir: q for (q, _), ir in right.cols.items() if q}
    used = taken | set(right_names)
    mapping: dict[str, str] = {}
    for n in right_names:
        if n in taken:
            q = qual_of.get(n, "")
            base = f"{q}_{n}" if q and not n.startswith(q) else n
            new = fresh_name(base, used)
            used.add(new)
            mapping[n] = new
    op = Project(right.op, tuple((mapping.get(n, n), Col(n)) for n in right_names))
    cols = {k: mapping.get(v, v) for k, v in right.cols.items()}
    return Rel(op, cols, list(right.names))
