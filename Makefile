# Every target creates .venv and installs from requirements.lock on its own, so a fresh machine
# with only python3 needs nothing else: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
PY_DIRS := src tests examples bench

.PHONY: demo test lint fmt lock bench-proxy bench-analysis bench-controller bench-slo bench-toolkit screenshots clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	@$(BIN)/uv pip sync -q --python $(BIN)/python --require-hashes --compile-bytecode requirements.lock
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# Bytecode for our own sources: every replica, proxy and CLI call is a fresh interpreter, and
# compiling from source on each start costs a second of CPU (PYTHONDONTWRITEBYTECODE is often
# set, so the interpreters would never cache it themselves). Up-to-date files are skipped.
BYTECODE := $(BIN)/python -m compileall -q src examples tests bench >/dev/null

demo: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python -m rollwise.demo

# Three workers (the tests mostly wait on processes and sockets), the slowest tests first;
# then the tests that time a rollout under load, alone (marker `solo`: on two cores, three
# workers' load would be what they measure); branch coverage of the test process and of the
# controller, CLI and proxy processes it starts (pyproject: [tool.coverage]), over both
# runs, with its floor.
test: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	@$(BYTECODE)
	$(BIN)/pytest -q -n 3 --dist worksteal -m "not solo" --cov --cov-report= --cov-fail-under=0
	$(BIN)/pytest -q -m solo --cov --cov-append --cov-report=term:skip-covered

# Benchmarks are not part of `make test`: see docs/performance.md for what they need.
bench-proxy: $(STAMP)
	$(BIN)/python bench/proxy/run.py $(ARGS)

bench-analysis: $(STAMP)
	$(BIN)/python bench/analysis/run.py $(ARGS)

# docs/dashboard.md's screenshots, taken by the dashboard's browser test (needs chromium)
screenshots: $(STAMP)
	mkdir -p docs/img
	ROLLWISE_SCREENSHOTS=docs/img $(BIN)/pytest -q --no-cov -p no:cacheprovider \
		tests/test_dashboard.py -k aborted

bench-toolkit: $(STAMP)
	$(BIN)/python bench/toolkit/run.py $(ARGS)

bench-slo: $(STAMP)
	$(BIN)/python bench/slo/run.py $(ARGS)

bench-controller: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python bench/controller/run.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)

# requirements.lock: what the tests run on (with the dev group); requirements-runtime.lock:
# the same versions without the dev group, for the controller's image (Dockerfile)
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --group dev --generate-hashes --python-version 3.11 \
		--no-header -o requirements.lock -q
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
		--no-header -o requirements-runtime.lock -q --constraint requirements.lock

clean:
	rm -rf $(VENV) .rollwise .mypy_cache .pytest_cache .ruff_cache .coverage .coverage.*
