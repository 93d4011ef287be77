"""Musketeer's dataflow IR: types, expressions, operators, workflows, passes.

This package imports nothing else from Musketeer; everything else imports it.
"""

from musketeer.ir.catalog import Catalog, Table
from musketeer.ir.schema import Field, Schema
from musketeer.ir.types import DataError, IRError, IRTypeError, MusketeerError, SourceLoc, UnsupportedError
from musketeer.ir.workflow import Workflow

__all__ = [
    "Catalog", "DataError", "Field", "IRError", "IRTypeError", "MusketeerError", "Schema",
    "SourceLoc", "Table", "UnsupportedError", "Workflow",
]
