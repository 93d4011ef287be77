"""The CIEL-style engine backend (work in progress: the engine is in engine/)."""
