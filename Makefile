# Gnomon — the two commands a newcomer needs: `make run` and `make test`. Everything else is here for them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup system venv engines-fetch run test check lint typecheck proto proto-check unit bench clean-venv \
	dashboard chromium dashboard-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup: system venv engines-fetch dashboard chromium ## install everything that is missing (idempotent)

system: ## JDK 17 >= 17.0.17 for the engines (Debian package), when missing or too old
	@bash engines/ensure-jdk.sh

venv: $(STAMP) ## the Python virtualenv with gnomon, its SDK and dev tools

FASTPATH := collector_svc/fastpath
$(STAMP): pyproject.toml constraints.txt sdk/python/pyproject.toml $(FASTPATH)/pyproject.toml $(FASTPATH)/Cargo.toml \
		$(FASTPATH)/Cargo.lock $(wildcard $(FASTPATH)/src/*.rs)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]' -e sdk/python
	# the collector's Rust fast path (pyo3 + maturin); cargo lives in ~/.cargo/bin
	PATH="$$HOME/.cargo/bin:$$PATH" $(BIN)/python -m pip install -q -c constraints.txt ./$(FASTPATH)
	@touch $(STAMP)

engines-fetch: venv ## resolve the Pulsar and Cassandra jars from Maven Central into the jar cache (once)
	$(BIN)/gnomon engines fetch

run: setup ## start the whole stack on the embedded default and show it working
	$(BIN)/gnomon up --demo

test: setup check ## everything: lint, types, stale generated code, unit + real-engine tests
	$(BIN)/python -m pytest

check: lint typecheck proto-check dashboard-check ## static checks only

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy .

proto: venv dashboard/node_modules/.package-lock.json ## regenerate gnomon/v1, the SDK's copy, the dashboard client
	$(BIN)/python -m gnomon.tools.protogen
	$(BIN)/python sdk/python/gen.py
	cd dashboard && npm run gen

proto-check:
	$(BIN)/python -m gnomon.tools.protogen --check
	$(BIN)/python sdk/python/gen.py --check

DASHBOARD_SOURCES := $(shell find dashboard/src -type f) dashboard/index.html dashboard/vite.config.ts \
	dashboard/tsconfig.json

dashboard: dashboard/dist/index.html ## the web dashboard: npm ci when its lockfile changed, a build when its sources did

dashboard/node_modules/.package-lock.json: dashboard/package-lock.json
	cd dashboard && npm ci --no-audit --no-fund
	@touch $@

dashboard/dist/index.html: dashboard/node_modules/.package-lock.json $(DASHBOARD_SOURCES)
	cd dashboard && npm run build

chromium: ## Debian's Chromium for the browser tests, when missing
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

dashboard-check: dashboard/node_modules/.package-lock.json ## TypeScript types; the generated client matches proto/
	cd dashboard && npx tsc --noEmit && npm run gen:check

unit: venv ## the tests that need no real engine
	$(BIN)/python -m pytest -m 'not engines and not dask_cluster'

clean-venv:
	rm -rf $(VENV)
