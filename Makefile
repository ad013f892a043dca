# Gnomon — the two commands a newcomer needs: `make run` and `make test`. Everything else is here for them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup system venv engines-fetch run test check lint typecheck proto proto-check unit bench clean-venv

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup: system venv engines-fetch ## install everything that is missing (idempotent)

system: ## JDK 17 >= 17.0.17 for the engines (Debian package), when missing or too old
	@bash engines/ensure-jdk.sh

venv: $(STAMP) ## the Python virtualenv with gnomon, its SDK and dev tools

$(STAMP): pyproject.toml constraints.txt sdk/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]' -e sdk/python
	@touch $(STAMP)

engines-fetch: venv ## resolve the Pulsar and Cassandra jars from Maven Central into the jar cache (once)
	$(BIN)/gnomon engines fetch

run: setup ## start the whole stack on the embedded default and show it working
	$(BIN)/gnomon up --demo

test: setup check ## everything: lint, types, stale generated code, unit + real-engine tests
	$(BIN)/python -m pytest

check: lint typecheck proto-check ## static checks only

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy .

proto: venv ## regenerate gnomon/v1 and the SDK's private copy from proto/gnomon/v1/*.proto
	$(BIN)/python -m gnomon.tools.protogen
	$(BIN)/python sdk/python/gen.py

proto-check:
	$(BIN)/python -m gnomon.tools.protogen --check
	$(BIN)/python sdk/python/gen.py --check

unit: venv ## the tests that need no real engine
	$(BIN)/python -m pytest -m 'not engines and not dask_cluster'

clean-venv:
	rm -rf $(VENV)
