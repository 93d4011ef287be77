# Quickstart targets. Both create .venv on first use and reuse it after;
# the install re-runs only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.musketeer-installed

.PHONY: demo test venv clean-venv capabilities

demo: $(STAMP)
	$(BIN)/musketeer run examples/revenue_by_region.sql --data-dir examples/data

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

venv: $(STAMP)

# docs/capabilities.md: what each built-in backend's generator implements.
capabilities: $(STAMP)
	$(BIN)/musketeer capabilities --write docs/capabilities.md

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Musketeer needs Python 3.11 or newer; run e.g. 'make PYTHON=python3.12 $(MAKECMDGOALS)'" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
