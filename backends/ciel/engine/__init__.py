"""A small CIEL-style dynamic task graph engine (master + workers over TCP).

Modules: `protocol` (frames, HMAC auth, batched connections), `store` (a
worker's object store with disk spill), `journal` (the master's append-only
log), `master`, `worker`, `api` (spawn/deref/Ref/Client) and `cluster`
(start a local cluster of processes). See backends/ciel/README.md.
"""
