# The two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
STAMP := $(VENV)/.installed
# The inbox page: built into the package (served at /) when web/'s sources change.
WEB_STAMP := src/zapsync/web_dist/.built
NODE_STAMP := web/node_modules/.installed
WEB_SOURCES := web/index.html web/vite.config.ts web/tsconfig.json $(shell find web/src -type f 2>/dev/null)
CHROMIUM := /usr/bin/chromium

.PHONY: help install web chromium run run-cluster test test-fast lint format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $(STAMP)

install: $(STAMP) ## install zapsync and its tools into .venv (from uv.lock)

$(NODE_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

$(WEB_STAMP): $(NODE_STAMP) $(WEB_SOURCES)
	cd web && npm run build
	@touch $(WEB_STAMP)

web: $(WEB_STAMP) ## build the inbox page (web/ → src/zapsync/web_dist/) when its sources changed

# The browser tests drive Debian's Chromium (Playwright's own download is not used).
chromium: ## install Debian's Chromium for the browser tests, when missing
	@test -x $(CHROMIUM) || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y chromium; }

run: install web ## build the page, migrate the SQLite database, load the sandbox demo, serve on :8000
	$(BIN)/zapsync db upgrade
	$(BIN)/zapsync serve --demo

# The suites the scaled-out mode changes, run again with Procrastinate on PostgreSQL.
SCALED_SUITES := tests/jobs tests/api/test_jobs.py tests/api/test_jobs_tenancy.py \
	tests/api/test_messaging.py tests/api/test_message_ids.py

# Scaled out on this machine: two replicas (:8000, :8002) and two workers on the local
# PostgreSQL and Redis, and the sandbox's Evolution gateway on :8081. Ctrl-C stops them all.
CLUSTER_DB := postgresql+psycopg://postgres@127.0.0.1:5432/zapsync_cluster
CLUSTER_ENV := DATABASE_URL=$(CLUSTER_DB) REDIS_URL=redis://127.0.0.1:6379/0 \
	ZAPSYNC_JOBS=procrastinate ZAPSYNC_SECRET_KEY=cluster-demo-secret

run-cluster: install web ## two replicas + two workers on PostgreSQL and Redis, and the sandbox
	@psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='zapsync_cluster'" \
		| grep -q 1 || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE zapsync_cluster"
	$(CLUSTER_ENV) $(BIN)/zapsync db upgrade
	@trap 'kill 0' INT TERM EXIT; \
	$(BIN)/zapsync sandbox serve --dialect evolution --port 8081 & \
	$(CLUSTER_ENV) ZAPSYNC_PUBLIC_URL=http://127.0.0.1:8000 $(BIN)/zapsync serve --port 8000 & \
	$(CLUSTER_ENV) ZAPSYNC_PUBLIC_URL=http://127.0.0.1:8002 $(BIN)/zapsync serve --port 8002 & \
	$(CLUSTER_ENV) $(BIN)/zapsync worker & \
	$(CLUSTER_ENV) $(BIN)/zapsync worker & \
	wait

test: install lint web chromium ## lint, then the whole suite on SQLite and PostgreSQL
	$(BIN)/python -m pytest -q -n 2
	ZAPSYNC_TEST_DBS=postgresql ZAPSYNC_TEST_JOBS=procrastinate \
		$(BIN)/python -m pytest -q -n 2 $(SCALED_SUITES)

test-fast: install web ## the suite on SQLite only, no lint
	ZAPSYNC_TEST_DBS=sqlite $(BIN)/python -m pytest -q -x

lint: install ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: install ## run every benchmark in bench/ and print its ratios
	$(UV) sync --frozen --inexact --group bench  # dlt, which bench/chatwoot_pull.py compares with
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python -m bench.$$(basename $$b .py) || exit 1; done

clean: ## remove the virtualenv and tool caches (keeps ./data)
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache web/node_modules src/zapsync/web_dist
