"""The local engine's expression compiler lives in backends/common/arrow_exprs.py
(the dask engine compiles the same pyarrow.compute text per partition); this
module keeps the old import path working."""

from musketeer.backends.common.arrow_exprs import (  # noqa: F401 - re-exports
    ExprCompiler, add_months, arrow_type, like_plan, python_literal, slice_bounds,
)
