"""Names of the variables that hold relations in generated programs.

Every engine names relations `t<N>_<kind>` (t3_filter, t7_lineitem): the
number keeps names unique and follows the program's order, the kind tells
a reader what the step is. Only `slug()`ed text ever reaches a name, so a
table called `x; import os` cannot become code.
"""

from __future__ import annotations

import itertools

from musketeer.backends.common.codetext import slug


class RelationNames:
    """Hands out `t<N>_<kind>` names, numbered in the order they are asked for."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def new(self, kind: str) -> str:
        return f"t{next(self._counter)}_{slug(kind)}"
