# The two commands of the README. Both create .venv if missing and install the package with its
# dev extras, so they work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean chromium

# Progress from the first second: each step says what it does before it starts, and pip
# prints what it collects and installs (no -q: the first install takes a few minutes).
$(BIN)/python:
	@echo "==> [1/3] creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] upgrading pip"
	$(BIN)/python -m pip install --progress-bar on --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	@echo "==> [3/3] installing alphatrace and its dependencies into $(VENV) (a few minutes the first time)"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@touch $(STAMP)
	@echo "==> installed"

DEMO_DB := alphatrace-demo.duckdb

# The demo store, its live replay (decisions as they are recorded, about 30–60 s), then a read
# key and the dashboard over the store. In a terminal it ends with the running dashboard
# (Ctrl-C stops it); elsewhere (CI, scripts) it prints how to start it.
demo: $(STAMP)
	@echo "==> building the demo store $(DEMO_DB)"
	$(BIN)/alphatrace demo --db $(DEMO_DB)
	@echo "==> the same history replayed live into a collector, 10 market days a second"
	$(BIN)/alphatrace demo --live --speed 10
	@$(BIN)/alphatrace keys create --db $(DEMO_DB) --name demo --scope read
	@if [ -t 1 ] && [ -z "$$CI" ]; then \
		$(BIN)/alphatrace serve --db $(DEMO_DB); \
	else \
		echo "dashboard: $(BIN)/alphatrace serve --db $(DEMO_DB)  ->  http://127.0.0.1:8700/ (sign in with the key above)"; \
	fi

# The dashboard's browser tests drive Debian's chromium. As root (CI) it is installed when
# missing; elsewhere the browser tests skip unless CI is set.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: browser tests will not run"; \
	fi

# Tests run in parallel, one worker per core (pytest-xdist). AREA=governance runs one area's
# folder (tests/governance); `make test-fast` leaves out the tests marked slow (fuzzing, real
# browsers, real-data replays, kill -9 and many-process runs). CI runs `make test`: everything.
PYTEST := $(BIN)/python -m pytest -n auto $(if $(AREA),tests/$(AREA))

test: $(STAMP) chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_governance.py
	$(BIN)/python bench/bench_collector.py
	$(BIN)/python bench/bench_sdk.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache alphatrace.duckdb demo.duckdb alphatrace-demo.duckdb alphatrace-demo.duckdb.wal bench/out test-artifacts
