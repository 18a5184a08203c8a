# Two entry points, both usable on a fresh machine with only Python installed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
OUT ?= demo_out
# Two cores on the project's machines: never let a library spawn more threads than that.
export OMP_NUM_THREADS ?= 2
export POLARS_MAX_THREADS ?= 2

.PHONY: demo test lint clean chromium postgresql

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP) $@

demo: $(STAMP)
	$(BIN)/mistrec demo --out $(OUT)

# The HTML report is checked in a real headless browser: Debian's Chromium, installed here when missing and
# root may install it (CI runs as root); elsewhere the test says how to get it.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		echo "installing Debian's chromium for the report test" && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || true

# The event-store tests also run on PostgreSQL: Debian's server, installed here when missing and root may install
# it; the tests start a throw-away cluster on loopback under a temporary directory (tests/postgres.py).
postgresql:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		echo "installing Debian's postgresql for the event-store tests" && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || true

test: $(DEV_STAMP) chromium postgresql
	$(BIN)/ruff check mistrec tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(DEV_STAMP)
	$(BIN)/ruff check mistrec tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
