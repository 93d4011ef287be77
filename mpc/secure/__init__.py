"""Relational operators on MPyC secure arrays (vectorised `mpc.np_*` calls).

A relation (`SecRel`) is a row count plus columns, each public (numpy, known
to all), held (numpy at one party only) or secret (a secure fixed-point
array), and an optional secret 0/1 row mask: filters multiply the mask
instead of dropping rows, so nobody learns which rows survived.
"""
