"""Musketeer's dataflow IR: types, expressions, operators, workflows, passes.

This package imports nothing else from Musketeer; everything else imports it.
"""

from ir.catalog import Catalog, Table
from ir.schema import Field, Schema
from ir.types import DataError, IRError, IRTypeError, MusketeerError, SourceLoc, UnsupportedError
from ir.workflow import Workflow

__all__ = [
    "Catalog", "DataError", "Field", "IRError", "IRTypeError", "MusketeerError", "Schema",
    "SourceLoc", "Table", "UnsupportedError", "Workflow",
]
