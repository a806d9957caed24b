# Each target sets up .venv itself when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.full: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[dev,bench,serve,deep,spark,federated,report,tune]"
	touch $(VENV)/.core $@

demo: $(VENV)/.core
	$(BIN)/chuchun demo

test: $(VENV)/.full
	$(BIN)/python -m mypy src/chuchun
	$(BIN)/python -m pytest

# `make bench BENCH_ARGS=--quick` (or `make bench-quick`): reduced sizes, one repetition,
# results in benchmarks/quick/ instead of benchmarks/results/
bench: $(VENV)/.full
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

bench-quick: $(VENV)/.full
	$(BIN)/python benchmarks/run_all.py --quick

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
