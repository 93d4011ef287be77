"""Predicate helpers on sqlglot trees: conjunct splitting, OR factoring and
finding which table aliases a condition refers to."""

from __future__ import annotations

from sqlglot import exp


def split_conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    if isinstance(node, exp.Paren):
        return split_conjuncts(node.this)
    if isinstance(node, exp.And):
        return [c for part in node.flatten() for c in split_conjuncts(part)]
    return [node]


def factor_or(node: exp.Expression) -> exp.Expression:
    """Pull conjuncts shared by every branch of an OR out in front of it.

    `(a = b AND x) OR (a = b AND y)` becomes `a = b AND (x OR y)`, so a join
    condition written inside each branch (TPC-H Q19) still drives an
    equi-join instead of a cross product.
    """
    if isinstance(node, exp.Paren):
        return factor_or(node.this)
    if isinstance(node, exp.And):
        return exp.and_(*[factor_or(c) for c in split_conjuncts(node)], copy=False)
    if not isinstance(node, exp.Or):
        return node
    branches = [split_conjuncts(factor_or(b)) for b in node.flatten()]
    common = [c for c in branches[0] if all(any(c == d for d in other) for other in branches[1:])]
    if not common:
        return node
    rest = []
    for b in branches:
        remaining = [c for c in b if not any(c == d for d in common)]
        if not remaining:  # one branch is exactly the common part: the OR is just `common`
            return exp.and_(*common, copy=False)
        rest.append(exp.and_(*remaining, copy=False) if len(remaining) > 1 else remaining[0])
    ored = exp.or_(*[exp.paren(r, copy=False) for r in rest], copy=False)
    return exp.and_(*common, exp.paren(ored, copy=False), copy=False)


def select_aliases(sel: exp.Expression) -> set[str]:
    """Table aliases a SELECT's FROM clause defines (lower-cased)."""
    out: set[str] = set()
    from_ = sel.args.get("from_") or sel.args.get("from")
    items = ([from_.this] if from_ is not None else []) + [j.this for j in sel.args.get("joins") or []]
    for item in items:
        if item.alias_or_name:
            out.add(item.alias_or_name.lower())
    return out


def free_qualifiers(node: exp.Expression, bound: frozenset[str]) -> set[str]:
    """Qualifiers of columns in `node` not bound by `bound` or by a SELECT
    nested inside `node`: the outer tables the expression depends on."""
    if isinstance(node, exp.Column):
        t = node.table.lower() if node.table else ""
        return {t} if t and t not in bound else set()
    if isinstance(node, exp.Select):
        bound = bound | frozenset(select_aliases(node))
    out: set[str] = set()
    for child in node.iter_expressions():
        out |= free_qualifiers(child, bound)
    return out
