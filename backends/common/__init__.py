"""Code shared by several backends' code generators.

Plain Python used at generation time (never imported by generated
programs): text escaping for program text, SQL rules worked out before a
program runs, and the pyarrow.compute expression compiler that the pandas +
pyarrow engines (local, dask) share.
"""
