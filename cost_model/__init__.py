"""Cost model: estimate sizes, cost each backend, partition the DAG into stages.

Imports `ir` only (plus pyarrow to read file metadata): the glue layer
(musketeer/) passes in which backends are available and what they support.

- `stats`: row counts and column statistics from file footers and samples;
- `cardinality`: rows and bytes per operator;
- `costs`: per-backend profiles (startup + per-row rates) and operator costs;
- `planner`: choose a backend per operator, cut the DAG into stages.
"""

from musketeer.cost_model.cardinality import Cardinality, Estimate
from musketeer.cost_model.costs import (
    BackendProfile,
    Profile,
    load_profile,
    profile_path,
    save_profile,
)
from musketeer.cost_model.planner import Plan, Stage, plan, single_backend_seconds

__all__ = [
    "BackendProfile", "Cardinality", "Estimate", "Plan", "Profile", "Stage", "load_profile", "plan",
    "profile_path", "save_profile", "single_backend_seconds",
]
