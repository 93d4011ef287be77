"""SQL frontend: sqlglot parses and qualifies; we lower to the IR.

Entry point: `parse_workflow(text, catalog, filename) -> ir.Workflow`.
"""

from musketeer.frontends.sql.statements import parse_workflow

__all__ = ["parse_workflow"]
