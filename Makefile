# Each target sets up .venv itself when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# The core install (`make demo`) goes through uv, which installs a cached wheel set in seconds
# where pip takes about a minute; uv is bootstrapped into the venv with pip, and pip does the
# install itself when uv cannot be had or fails. `make demo INSTALLER=pip` skips uv.
INSTALLER ?= uv
UV_SPEC   := uv>=0.5,<1

.PHONY: demo test bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml | $(BIN)/python
	@if [ "$(INSTALLER)" = uv ] && { [ -x $(BIN)/uv ] || \
	    $(PIP) install --quiet --disable-pip-version-check "$(UV_SPEC)" >/dev/null 2>&1; }; then \
	  echo "installing chuchun into $(VENV) with uv"; \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -e . || \
	  { echo "uv failed; installing with pip"; $(PIP) install --quiet -e .; }; \
	else \
	  echo "installing chuchun into $(VENV) with pip"; \
	  $(PIP) install --quiet -e .; \
	fi
	touch $@

# the full set stays on pip: it honours pip's own configuration (local wheel indexes,
# constraints) for the large optional stacks such as torch
$(VENV)/.full: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet --upgrade pip
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
