# Every target creates .venv and installs from requirements.lock on its own, so a fresh machine
# with only python3 needs nothing else: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed
PY_DIRS := src tests examples bench

.PHONY: demo test lint fmt lock bench-proxy bench-analysis clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	@$(BIN)/uv pip sync -q --python $(BIN)/python --require-hashes requirements.lock
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rollwise.demo

test: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	$(BIN)/pytest -q

# Benchmarks are not part of `make test`: see docs/performance.md for what they need.
bench-proxy: $(STAMP)
	$(BIN)/python bench/proxy/run.py $(ARGS)

bench-analysis: $(STAMP)
	$(BIN)/python bench/analysis/run.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)

lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --group dev --generate-hashes --python-version 3.11 \
		--no-header -o requirements.lock -q

clean:
	rm -rf $(VENV) .rollwise .mypy_cache .pytest_cache .ruff_cache
