"""Code shared by several backends' code generators and runners.

Plain Python used at generation time (never imported by generated
programs): text escaping for program text, SQL rules worked out before a
program runs, the expression-compiler base every engine's compiler extends
(expr_compiler.py) and the pyarrow.compute compiler that the pandas +
pyarrow engines (local, dask, ciel) share, the generator skeleton of those
engines, the emit order and the rendering of every program; and, for the
runners, loading a program's text as a module and calling its run().
"""
