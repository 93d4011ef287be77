"""Musketeer: write a data workflow once, run it on the engine that suits it."""

__version__ = "0.1.0"
