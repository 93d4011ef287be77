"""Relational operators on MPyC secure arrays (vectorised `mpc.np_*` calls).

A relation (`SecRel`) is a row count plus columns, each public (numpy, known
to all), held (numpy at one party only) or secret (a secure fixed-point
array), and an optional secret 0/1 row mask: filters multiply the mask
instead of dropping rows, so nobody learns which rows survived.

- `engine.py`: one handler per IR operator, following the split plan's
  placements (public / hybrid with an STP / oblivious);
- `oblivious.py`: data-oblivious building blocks (Batcher sort with
  lexicographic keys, segmented scans, one-hot over a public key domain);
  these carry the `--mpc-only` baseline and grouping on secret keys;
- `relation.py`: `SecRel`, `Column` and the `Channel` every cleartext value
  passes through (what the leakage tests record).
"""
