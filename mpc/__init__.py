"""Multi-party joint queries: Conclave split (split.py) and MPyC secure stages (secure/)."""
