"""IR optimisation passes: pure `Workflow -> Workflow` rewrites, run in order.

Like sqlglot's optimizer RULES, `PASSES` lists small functions that each do
one thing; `optimize` threads a workflow through them. Every pass keeps the
sinks' schemas, keeps shared nodes shared, treats While bodies as opaque, and
leaves its own output unchanged when run again, so `optimize` is idempotent.

Order matters:

1. `constant_folding` first, so that pushdown sees `col <= DATE '1998-09-02'`
   instead of date arithmetic, and drops `Filter(TRUE)`;
2. `reorder_joins` reorders `FROM a, b, c` joins whose written order would
   leave a cross product that another order avoids;
3. `predicate_pushdown` moves conjuncts towards the Scans and turns equalities
   over cross joins into equi-joins;
4. `magic_sets` cuts the input of a grouped join side (a decorrelated
   subquery) to the keys the other side, now filtered, can look up; then
   `semi_join_pushdown` moves semi/anti joins (those, and IN/EXISTS) below
   inner joins onto the input that holds their keys;
5. `projection_pruning` then knows which columns are still read (predicates
   now sit lower, so fewer columns travel up);
6. `merge_projects` and `remove_redundant` tidy the Projects left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from musketeer.ir.passes.constant_folding import constant_folding
from musketeer.ir.passes.magic_sets import magic_sets
from musketeer.ir.passes.merge_projects import merge_projects
from musketeer.ir.passes.predicate_pushdown import predicate_pushdown
from musketeer.ir.passes.projection_pruning import projection_pruning
from musketeer.ir.passes.remove_redundant import remove_redundant
from musketeer.ir.passes.reorder_joins import reorder_joins
from musketeer.ir.passes.semi_join_pushdown import semi_join_pushdown
from musketeer.ir.workflow import Workflow

Pass = Callable[[Workflow], Workflow]

PASSES: tuple[Pass, ...] = (
    constant_folding,
    reorder_joins,
    predicate_pushdown,
    magic_sets,
    semi_join_pushdown,
    projection_pruning,
    merge_projects,
    remove_redundant,
)


def optimize(workflow: Workflow, passes: Iterable[Pass] = PASSES) -> Workflow:
    """Run `passes` in order over `workflow` and return the rewritten workflow."""
    for p in passes:
        workflow = p(workflow)
    return workflow


__all__ = [
    "PASSES", "Pass", "constant_folding", "magic_sets", "merge_projects", "optimize",
    "predicate_pushdown", "projection_pruning", "remove_redundant", "reorder_joins",
    "semi_join_pushdown",
]
