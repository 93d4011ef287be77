"""Execution engines. Each subpackage has the same shape: __init__ (the
Backend descriptor), codegen.py, templates/, runner.py."""
