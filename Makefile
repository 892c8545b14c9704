# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv with the machine's python3 (3.11+) and installs what it needs.
# `make demo ARGS=--keep` leaves the demo's server (and its console, /ui) running.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,server,analysis,openfeature,aio,postgresql,otel]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py $(ARGS)

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" scripts/test

check: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" scripts/check

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_variant.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
